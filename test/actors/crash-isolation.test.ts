/**
 * A defect in a command batch (here: a projection that dies on one event) is retried
 * command by command (src/actors/command-batch.ts processBatch): only the command that causes
 * it gets a 500; the rest of its batch commits, and the host's log stays gapless.
 */
import { Logger } from "effect"
import { describe, expect, it } from "vitest"
import { verifyLog } from "../support/event-log.ts"
import { serveTempProject } from "../support/project-server.ts"
import { notesProject } from "../support/temp-project.ts"

const HOST = "crash.batch.test"

const spec = notesProject({
  name: "crasher",
  hosts: [HOST],
  projection:
    `(e, db) => e.data.text === "crash" ? Effect.die(new Error("projection bug")) : db.insert(Note, e.data)`,
})

describe("a defect in a command batch", () => {
  const running = serveTempProject(spec)

  it("fails only the command that causes it; the others commit", async () => {
    const texts = ["a", "b", "c", "crash", "d", "e", "f", "g"]
    const statuses = await Promise.all(
      texts.map(async (text) =>
        (await running.server.call(HOST, "/api/AddNote", { body: JSON.stringify({ text }) })).status
      ),
    )
    expect(statuses).toEqual([200, 200, 200, 500, 200, 200, 200, 200])
    const rows = await running.server
      .sql`select data->>'text' as text from hamlet_events where host = ${HOST} order by seq`
    expect(rows.map((r) => r.text).sort()).toEqual(["a", "b", "c", "d", "e", "f", "g"])
    expect(await verifyLog(running.server.sql, HOST)).toMatchObject({ isGapless: true, brokenAt: undefined })
    // and the host keeps serving
    expect(
      (await running.server.call(HOST, "/api/AddNote", { body: JSON.stringify({ text: "after" }) })).status,
    )
      .toBe(200)
  })
})

describe("a projection whose insert violates a read table's key", () => {
  // the server's error lines, as [message, fields]
  const logged: Array<readonly [string, Record<string, unknown> | undefined]> = []
  const capture = Logger.make(({ message }) => {
    const [text, fields] = message as [string, Record<string, unknown> | undefined]
    logged.push([text, fields])
  })
  const running = serveTempProject(
    notesProject({
      name: "keyclash",
      hosts: ["clash.batch.test"],
      projection: `(e, db) => db.insert(Note, { id: e.data.text, text: e.data.text })`,
    }),
    { loggers: [capture] },
  )
  const add = async (body: Record<string, string>) => {
    const response = await running.server.call("clash.batch.test", "/api/AddNote", {
      body: JSON.stringify(body),
    })
    return [response.status, (await response.json()).error?.code]
  }

  it("is the project's bug (500), not a conflict with the log (409) the caller could act on", async () => {
    expect(await add({ id: "n1", text: "same" })).toEqual([200, undefined])
    expect(await add({ id: "n2", text: "same" })).toEqual([500, "internal"])
    expect(await add({ id: "n1", text: "other" })).toEqual([409, "conflict"]) // the stream exists
  })

  it("is logged naming the handler whose command failed in the store, so its author can be found", async () => {
    const failures = () => logged.filter(([text]) => text === "command failed in the store")
    const before = failures().length
    expect(await add({ id: "n3", text: "clash" })).toEqual([200, undefined])
    expect(await add({ id: "n4", text: "clash" })).toEqual([500, "internal"])
    const failed = failures().slice(before)
    expect(failed).toHaveLength(1)
    expect(failed[0][1]).toMatchObject({ host: "clash.batch.test", handlers: ["AddNote"] })
  })
})
