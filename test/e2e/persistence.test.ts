/**
 * Data survives a restart on embedded PGlite with a data directory: items are still
 * served, and the host's log continues where it stopped (no seq reuse, chain unbroken).
 * A second server on a data directory in use is refused, so it cannot lose the first's writes.
 */
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { testDatabase } from "../support/database.ts"
import { readLog, verifyLog } from "../support/event-log.ts"
import { requestWithHost } from "../support/http.ts"
import { startNode } from "../support/node-process.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

const BLOG = "blog.example.com"

// the store in dir/pg, as a server keeps it in HAMLET_DATA/pg: its lock file (pg.lock) stays in dir
const _start = (dir: string) => startTestServer({ database: testDatabase("pglite", join(dir, "pg")) })

const _submit = async (server: TestServer, title: string): Promise<string> => {
  const res = await server.call(BLOG, "/api/SubmitItem", { body: JSON.stringify({ title }) })
  expect(res.status).toBe(200)
  return (await res.json()).id
}

describe("restart persistence on PGlite", () => {
  const dirs: Array<string> = []
  afterAll(async () => {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {})
  })

  it("an item written before a restart is served after it, and the log continues its seq", async () => {
    const dir = await Deno.makeTempDir({ prefix: "hamlet-persist-" })
    dirs.push(dir)

    const first = await _start(dir)
    let before: Awaited<ReturnType<typeof readLog>>
    let id: string
    try {
      id = await _submit(first, "survives")
      await _submit(first, "also survives")
      before = await readLog(first.sql, BLOG)
    } finally {
      await first.close()
    }
    expect(before.map((r) => r.seq)).toEqual([1, 2])

    const second = await _start(dir)
    try {
      const feed = await (await second.call(BLOG, "/api/GetFeed")).json()
      expect(feed.items.map((i: { title: string }) => i.title)).toEqual(["also survives", "survives"])
      expect((await second.call(BLOG, `/api/GetItem?id=${id}`)).status).toBe(200)

      const next = await _submit(second, "after restart")
      const after = await readLog(second.sql, BLOG)
      expect(after.map((r) => r.seq)).toEqual([1, 2, 3])
      expect(after.slice(0, 2).map((r) => r.hash)).toEqual(before.map((r) => r.hash))
      expect(after[2].data.id).toBe(next)
      expect(await verifyLog(second.sql, BLOG)).toEqual({ count: 3, isGapless: true, brokenAt: undefined })
    } finally {
      await second.close()
    }
  })

  it("a second server on a data directory in use refuses to start, and the first keeps it", async () => {
    const dir = await Deno.makeTempDir({ prefix: "hamlet-persist-" })
    dirs.push(dir)
    const env = { HAMLET_DATA: dir, HAMLET_ISOLATES: "1", NATS_URL: "", DATABASE_URL: "" }
    const first = await startNode(env)
    try {
      const submitted = await requestWithHost(first.port, BLOG, "/api/SubmitItem", {
        body: JSON.stringify({ title: "kept" }),
      })
      expect(submitted.status).toBe(200)
      const second = await startNode(env).then((node) => node, (e: unknown) => e)
      // before the lock it started: each served its own copy, and the last to stop won the disk
      if (!(second instanceof Error)) await (second as { close: () => Promise<void> }).close()
      expect(String(second)).toMatch(
        /node exited early \(1\)[\s\S]*the embedded store \S+ is open by another process/,
      )
      expect(await readFile(join(dir, "pglite.url"), "utf8")).toMatch(/^postgres:\/\//)
    } finally {
      await first.close()
    }
    const restarted = await _start(dir)
    try {
      const feed = await (await restarted.call(BLOG, "/api/GetFeed")).json()
      expect(feed.items.map((i: { title: string }) => i.title)).toEqual(["kept"])
    } finally {
      await restarted.close()
    }
  }, 120_000)
})
