/**
 * `defineProject({ events })` is the whole vocabulary of a project's log when given: a
 * projection of an event it does not list fails the load, and a command emitting one is a 500
 * with nothing written. A project that lists no events may emit any.
 */
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadProject } from "../../src/projects/loader.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { MOD, notesProject, type TempProject, writeTempProject } from "../support/temp-project.ts"

const HOST = "vocabulary.test"

/** A `Stray` event, declared in project.ts' module but listed (or not) in its events. */
const strayEvent =
  `export const Stray = defineEvent("Stray", Schema.Struct({ id: Schema.String }), (e) => e.id)`

const emitStray = `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Stray } from "../project.ts"
export default defineCommand({
  name: "EmitStray",
  input: Schema.Struct({ id: Schema.String }),
  output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) => ctx.emit(Stray, input).pipe(Effect.as({ ok: true })),
})
`

/** The same emit, with the defect it dies with caught: the run fails all the same. */
const swallowStray = emitStray.replaceAll("EmitStray", "SwallowStray").replace(
  "Effect.as({ ok: true })",
  "Effect.as({ ok: true }), Effect.catchCause(() => Effect.succeed({ ok: true }))",
)

describe("declared events", () => {
  it("a projection of an event the project does not list fails the load, naming it", async () => {
    const base = notesProject({
      name: "unlisted",
      hosts: [],
      projection: "(e, db) => db.insert(Note, e.data)",
    })
    const temp = await writeTempProject({
      ...base,
      projectTs: base.projectTs
        .replace("export default", `${strayEvent}\nexport default`)
        .replace("projections: [", "projections: [defineProjection(Stray, () => Effect.void), "),
    })
    try {
      const error = await Effect.runPromise(Effect.flip(loadProject(temp.dir, undefined)))
      expect(error._tag).toBe("ProjectLoadError")
      expect(error.message).toBe("a projection of Stray, which events does not declare")
    } finally {
      await temp.remove()
    }
  })

  describe("emitting", () => {
    let listed: TempProject
    let unlisted: TempProject
    let server: TestServer
    let open: TestServer

    const spec = (name: string, events: string | undefined) => {
      const base = notesProject({ name, hosts: [HOST], projection: "(e, db) => db.insert(Note, e.data)" })
      const projectTs = base.projectTs.replace("export default", `${strayEvent}\nexport default`)
      return {
        ...base,
        projectTs: events === undefined
          ? projectTs.replace("  events: [Noted],\n", "")
          : projectTs.replace("events: [Noted]", events),
        api: { ...base.api, EmitStray: emitStray, SwallowStray: swallowStray },
      }
    }

    beforeAll(async () => {
      listed = await writeTempProject(spec("listed", "events: [Noted]"))
      unlisted = await writeTempProject(spec("open", undefined))
      server = await startTestServer({ configPath: listed.configPath })
      open = await startTestServer({ configPath: unlisted.configPath })
    }, 60_000)
    afterAll(async () => {
      await server?.close()
      await open?.close()
      await listed?.remove()
      await unlisted?.remove()
    })

    const strays = async (on: TestServer) =>
      (await on.sql`select count(*)::int as n from hamlet_events where host = ${HOST} and type = 'Stray'`)[0]
        .n as number

    it("an event the project does not list: 500 with the request id, nothing written; listed ones still land", async () => {
      for (const handler of ["EmitStray", "SwallowStray"]) {
        const response = await server.call(HOST, `/api/${handler}`, { body: JSON.stringify({ id: "a" }) })
        expect(response.status, handler).toBe(500)
        const body = await response.json() as { error: { code: string; requestId: string } }
        expect(body.error.code).toBe("internal")
        expect(body.error.requestId).toBe(response.headers.get("x-request-id"))
      }
      expect(await strays(server)).toBe(0)
      const noted = await server.call(HOST, "/api/AddNote", { body: JSON.stringify({ text: "listed" }) })
      expect(noted.status).toBe(200)
    })

    it("a project that lists no events may emit any", async () => {
      const response = await open.call(HOST, "/api/EmitStray", { body: JSON.stringify({ id: "b" }) })
      expect(response.status).toBe(200)
      expect(await strays(open)).toBe(1)
    })
  })
})
