/**
 * A defect in a command batch (here: a projection that dies on one event) is retried
 * command by command (src/actors/command-batch.ts processBatch): only the command that causes
 * it gets a 500; the rest of its batch commits, and the host's log stays gapless.
 */
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
