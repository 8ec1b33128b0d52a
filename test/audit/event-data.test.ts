/**
 * Projections see an event's data as its Schema's Type on the live path and in rebuilds
 * alike: a `Schema.Date` field is a Date in both (it is stored as an ISO string), so an
 * untouched host verifies clean and a rebuild runs the same projection code to the same rows.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Auditor, AuditorLive } from "../../src/audit/auditor.ts"
import { PostgresLive } from "../../src/store/postgres.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { checkService } from "../support/services.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { MOD, type TempProject, writeTempProject } from "../support/temp-project.ts"

const HOST = "dated.example.com"
const hasPostgres = await checkService("postgres")

// the audit needs its own connections beside the server's: real Postgres
describe.skipIf(!hasPostgres)("event data as projections see it", () => {
  const scope = Effect.runSync(Scope.make())
  let server: TestServer
  let url: string
  let temp: TempProject
  beforeAll(async () => {
    temp = await writeTempProject({
      name: "dated",
      hosts: [HOST],
      projectTs: `import { Effect, Schema } from "effect"
import { defineEvent, defineModel, defineProject, defineProjection } from ${MOD}
export const Stamp = defineModel("stamp", { id: Schema.String, seen_as: Schema.String, at_ms: Schema.Number })
export const Stamped = defineEvent("Stamped", Schema.Struct({ id: Schema.String, at: Schema.Date }), (d) => d.id)
export default defineProject({
  name: "dated", models: [Stamp], events: [Stamped],
  projections: [defineProjection(Stamped, (e, db) =>
    db.insert(Stamp, {
      id: e.data.id,
      seen_as: e.data.at instanceof Date ? "Date" : typeof e.data.at,
      at_ms: e.data.at.getTime(),
    }))],
})
`,
      api: {
        AddStamp: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Stamped } from "../project.ts"
export default defineCommand({
  name: "AddStamp", input: Schema.Struct({ id: Schema.String }), output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) => ctx.emit(Stamped, { id: input.id, at: new Date(1_000) }).pipe(Effect.as({ ok: true })),
})
`,
      },
    })
    url = await Effect.runPromise(Scope.provide(scope)(scratchPostgresUrl))
    server = await startTestServer({ database: PostgresLive(url), configPath: temp.configPath })
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await temp?.remove()
  })

  it("a Schema.Date field is a Date live and on rebuild, and stored as its ISO string", async () => {
    const res = await server.call(HOST, "/api/AddStamp", { body: JSON.stringify({ id: "s1" }) })
    expect(res.status).toBe(200)
    expect(await server.sql`select id, seen_as, at_ms from dated.stamp`).toEqual([
      { id: "s1", seen_as: "Date", at_ms: 1000 },
    ])
    const [event] = await server.sql`select data from hamlet_events where host = ${HOST}`
    expect(event.data).toEqual({ id: "s1", at: "1970-01-01T00:00:01.000Z" })
    const report = await Effect.runPromise(
      Effect.gen(function* () {
        return yield* (yield* Auditor).verify(HOST)
      }).pipe(Effect.provide(AuditorLive(temp.configPath).pipe(Layer.provide(PostgresLive(url, 4))))),
    )
    expect(report.chain.breaks).toEqual([])
    expect(report.projections?.drifts).toEqual([])
  })
})
