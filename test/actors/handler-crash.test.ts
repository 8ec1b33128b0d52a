/**
 * Project code that breaks the rules of Effect — a handler or projection that interrupts itself,
 * or throws outside Effect — fails only the command it ran for (500, nothing of it told to the
 * client); the host's actor goes on serving the next commands.
 */
import { describe, expect, it } from "vitest"
import { serveTempProject } from "../support/project-server.ts"
import { MOD, notesProject } from "../support/temp-project.ts"

const HOST = "handler.crash.test"
const notes = notesProject({
  name: "handlercrash",
  hosts: [HOST],
  projection: `(e, db) => {
    if (e.data.text === "interrupt") return Effect.interrupt
    if (e.data.text === "throw") throw new Error("projection thrown outside Effect")
    return db.insert(Note, e.data)
  }`,
})
const command = (name: string, handle: string) =>
  `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
export default defineCommand({
  name: ${JSON.stringify(name)},
  input: Schema.Struct({}),
  output: Schema.Struct({}),
  handle: ${handle},
})
`

describe("project code that breaks the rules", () => {
  const running = serveTempProject({
    ...notes,
    api: {
      ...notes.api,
      Interrupt: command("Interrupt", "() => Effect.interrupt"),
      Throw: command("Throw", "() => { throw new Error('handler thrown outside Effect') }"),
    },
  })
  const post = (path: string, body: unknown) =>
    running.server.call(HOST, path, { body: JSON.stringify(body) })

  const breakers: ReadonlyArray<[string, string, unknown]> = [
    ["a handler that interrupts itself", "/api/Interrupt", {}],
    ["a handler that throws outside Effect", "/api/Throw", {}],
    ["a projection that interrupts itself", "/api/AddNote", { text: "interrupt" }],
    ["a projection that throws outside Effect", "/api/AddNote", { text: "throw" }],
  ]
  for (const [what, path, body] of breakers) {
    it(`${what} fails its command only; the host goes on`, async () => {
      const broken = await post(path, body)
      expect(broken.status).toBe(500)
      const text = await broken.text()
      expect(text).not.toContain("outside Effect")
      // the id to quote is this request's own (the one in its x-request-id header)
      expect(JSON.parse(text).error).toMatchObject({
        code: "internal",
        requestId: broken.headers.get("x-request-id"),
      })
      expect(broken.headers.get("x-request-id")).toMatch(/\S/)
      const statuses = await Promise.all(
        ["a", "b", "c"].map(async (t) => (await post("/api/AddNote", { text: t })).status),
      )
      expect(statuses).toEqual([200, 200, 200])
    })
  }
})
