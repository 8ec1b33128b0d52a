/**
 * An export whose store fails part way (the connection lost between two pages) is a failed
 * transfer for the client — the body ends without its last chunk, so fetch's read rejects and
 * curl exits 18 — never a clean end that a `> file` would keep as if whole; the failure is
 * reported with the last seq sent.
 */
import { describe, expect, it } from "vitest"
import { ndjsonBody } from "../../src/audit/export.ts"
import type { StoredEvent } from "../../src/store/event-log.ts"

const event = (seq: number): StoredEvent => ({
  host: "blog.example.com",
  seq,
  project: "horatio",
  stream: "item-1",
  version: seq,
  type: "ItemSubmitted",
  data: { title: `t${seq}` },
  meta: {},
  recordedAt: new Date("2026-11-24T00:00:00Z"),
  hash: "0".repeat(64),
})

async function* failingAfterOnePage(): AsyncGenerator<ReadonlyArray<StoredEvent>> {
  yield [event(1), event(2)]
  throw new Error("connection lost")
}

describe("an export cut short by the store", () => {
  it("fails the client's transfer after the events sent, and reports the last seq sent", async () => {
    const failures: Array<[string, number]> = []
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, () =>
      new Response(
        ndjsonBody(failingAfterOnePage(), (error, seq) => failures.push([String(error), seq])),
        { headers: { "content-type": "application/x-ndjson" } },
      ))
    try {
      const response = await fetch(`http://127.0.0.1:${server.addr.port}/`)
      expect(response.status).toBe(200)
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let received = ""
      const outcome = await (async () => {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) return "clean end"
          received += decoder.decode(value)
        }
      })().catch(() => "transfer failed")
      expect(outcome).toBe("transfer failed")
      expect(received.trim().split("\n").map((line) => JSON.parse(line).seq)).toEqual([1, 2])
      expect(failures).toEqual([["Error: connection lost", 2]])
    } finally {
      await server.shutdown()
    }
  })
})
