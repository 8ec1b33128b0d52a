/**
 * A purge races the tenant: SoftDeleteCleanup lists a row soft-deleted past retention, and the
 * tenant creates it again before the purge commits. The new, live row stays — in the live table
 * and in an audit replay of the host's log alike — and rows still due are purged as before.
 */
import { Duration, Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Auditor, AuditorLive } from "../../src/audit/auditor.ts"
import { softDeleteCleanup } from "../../src/schedule/cleanup-jobs.ts"
import { appendSystemEvents } from "../../src/schedule/system-append.ts"
import type { PendingEvent } from "../../src/store/event-log.ts"
import { Database, type Sql } from "../../src/store/database.ts"
import { readLog } from "../support/event-log.ts"
import { startTestServer, type TestServer, type TestServerOptions } from "../support/server.ts"
import { checkService } from "../support/services.ts"
import { MOD, type TempProject, writeTempProject } from "../support/temp-project.ts"

const HOST = "purger.example.com"
const hasServices = await checkService("postgres") && await checkService("nats")

const command = (name: string, event: string, input: string) =>
  `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { ${event} } from "../project.ts"
export default defineCommand({
  name: ${JSON.stringify(name)},
  input: ${input},
  output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) => ctx.emit(${event}, input).pipe(Effect.as({ ok: true })),
})
`

const purger = {
  name: "purger",
  hosts: [HOST],
  projectTs: `import { Effect, Schema } from "effect"
import { defineEvent, defineModel, defineProject, defineProjection } from ${MOD}
export const Item = defineModel("item", { id: Schema.String, text: Schema.String }, { softDelete: true, retention: "30 days" })
export const Put = defineEvent("Put", Schema.Struct({ id: Schema.String, text: Schema.String }), (e) => e.id)
export const Deleted = defineEvent("Deleted", Schema.Struct({ id: Schema.String }), (e) => e.id)
export default defineProject({
  name: "purger",
  models: [Item],
  events: [Put, Deleted],
  projections: [
    defineProjection(Put, (e, db) => Effect.andThen(db.remove(Item, { id: e.data.id }), db.insert(Item, e.data))),
    defineProjection(Deleted, (e, db) => db.softDelete(Item, e.data.id, e.recordedAt)),
  ],
})
`,
  api: {
    PutItem: command("PutItem", "Put", "Schema.Struct({ id: Schema.String, text: Schema.String })"),
    DeleteItem: command("DeleteItem", "Deleted", "Schema.Struct({ id: Schema.String })"),
  },
}

const describePurgeRace = (options: TestServerOptions) =>
  describe(`a purge racing a re-create on ${options.store} with the ${options.bus} bus`, () => {
    let temp: TempProject
    let server: TestServer
    beforeAll(async () => {
      temp = await writeTempProject(purger)
      server = await startTestServer({ ...options, configPath: temp.configPath })
    }, 60_000)
    afterAll(async () => {
      await server?.close()
      await temp?.remove()
    })

    const post = async (path: string, body: unknown) => {
      const res = await server.call(HOST, path, { body: JSON.stringify(body) })
      expect(res.status).toBe(200)
    }
    /** The server's SQL client, re-creating x as soon as the job has listed what to purge. */
    const recreatingAfterListing = (): Sql => {
      let isDone = false
      return new Proxy(server.sql, {
        get(target, prop) {
          const value = Reflect.get(target, prop)
          if (prop !== "unsafe") return typeof value === "function" ? value.bind(target) : value
          return (...args: Parameters<Sql["unsafe"]>) =>
            target.unsafe(...args).then(async (rows) => {
              if (!isDone && String(args[0]).includes("deleted_at <")) {
                isDone = true
                await post("/api/PutItem", { id: "x", text: "new, live" })
              }
              return rows
            })
        },
      })
    }
    const verify = () =>
      Effect.runPromise(
        Effect.gen(function* () {
          return yield* (yield* Auditor).verify(HOST)
        }).pipe(
          Effect.provide(
            AuditorLive(temp.configPath).pipe(
              Layer.provide(
                Layer.succeed(Database, { sql: server.sql, kind: options.store!, url: undefined }),
              ),
            ),
          ),
        ),
      )

    it("never purges a row created again after the job listed it, live or on replay", async () => {
      await post("/api/PutItem", { id: "x", text: "old" })
      await post("/api/DeleteItem", { id: "x" })
      await post("/api/PutItem", { id: "y", text: "gone" })
      await post("/api/DeleteItem", { id: "y" })
      // 31 days on, both were soft-deleted past the 30 days' retention (their deleted_at is the
      // time their event was recorded, so a replay sets the same)
      const now = new Date(Date.now() + Duration.toMillis(Duration.days(31)))
      const projects = [...server.supervisor.routing().projects.values()]

      const purged = await Effect.runPromise(
        softDeleteCleanup({ sql: recreatingAfterListing(), bus: server.bus }, projects, now),
      )

      expect(purged).toBeGreaterThanOrEqual(1)
      const rows = await server.sql`select id, text, deleted_at from purger.item where host = ${HOST}`
      expect(rows).toEqual([{ id: "x", text: "new, live", deleted_at: null }])
      // the purge committed after the re-create: it is after it in the host's log too
      const log = await readLog(server.sql, HOST)
      expect(log.map((e) => e.type)).toEqual(["Put", "Deleted", "Put", "Deleted", "Put", "HamletRowsPurged"])
      // it lists what its own transaction found due: x was live again by then
      expect(log[5].data).toMatchObject({ table: "item", ids: ["y"], deletedBefore: expect.any(String) })
      // a rebuild from the log reaches the same rows
      const report = await verify()
      expect(report.chain.breaks).toEqual([])
      expect(report.projections?.drifts).toEqual([])
    })

    it("a purge logged listing a row live again (as the job once did) replays as it applied live", async () => {
      await post("/api/PutItem", { id: "z", text: "old" })
      await post("/api/DeleteItem", { id: "z" })
      await post("/api/PutItem", { id: "z", text: "new, live" })
      await post("/api/PutItem", { id: "w", text: "gone" })
      await post("/api/DeleteItem", { id: "w" })
      const project = [...server.supervisor.routing().projects.values()].find((p) => p.name === "purger")!
      // the shape the job wrote when it listed ids outside the transaction: z had been re-created
      const deletedBefore = new Date(Date.now() + 1_000).toISOString()
      const purge: PendingEvent = {
        stream: "hamlet-purge-item",
        type: "HamletRowsPurged",
        data: { table: "item", ids: ["w", "z"], deletedBefore },
        meta: { handler: "SoftDeleteCleanup", system: true },
      }
      await Effect.runPromise(
        appendSystemEvents(
          { sql: server.sql, bus: server.bus },
          project,
          HOST,
          () => Effect.succeed([purge]),
        ),
      )
      const rows = await server.sql`select id, text, deleted_at from purger.item
                                    where host = ${HOST} and id in ('w', 'z')`
      expect(rows).toEqual([{ id: "z", text: "new, live", deleted_at: null }])
      const report = await verify()
      expect(report.chain.breaks).toEqual([])
      expect(report.projections?.drifts).toEqual([])
    })
  })

describePurgeRace({ store: "pglite", bus: "memory" })
describe.skipIf(!hasServices)("on the real Postgres and NATS", () => {
  describePurgeRace({ store: "postgres", bus: "nats" })
})
