/**
 * `--rebuild` while the server keeps writing the same host (real Postgres, so the repair and
 * the host actor really run concurrently): the partition lock orders them, so the repaired
 * tables end up exactly what the log says, and no write is lost or rejected.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Auditor, AuditorLive } from "../../src/audit/auditor.ts"
import { PostgresLive } from "../../src/store/postgres.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { checkService } from "../support/services.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

const CONFIG = "./test/fixtures/audit/config.json"
const BLOG = "blog.example.com"
const hasPostgres = await checkService("postgres")

describe.skipIf(!hasPostgres)("rebuild beside live writes on postgres", () => {
  const scope = Effect.runSync(Scope.make())
  let server: TestServer
  let url: string
  const audit = <A, E>(body: (auditor: Auditor["Service"]) => Effect.Effect<A, E>) =>
    Effect.runPromise(
      Effect.gen(function* () {
        return yield* body(yield* Auditor)
      }).pipe(Effect.provide(AuditorLive(CONFIG).pipe(Layer.provide(PostgresLive(url, 4))))),
    )

  beforeAll(async () => {
    url = await Effect.runPromise(Scope.provide(scope)(scratchPostgresUrl))
    server = await startTestServer({ database: PostgresLive(url), configPath: CONFIG })
  })
  afterAll(async () => {
    await server?.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("repairs a host while commands for it keep committing", async () => {
    const post = (handler: string, body: unknown) =>
      server.call(BLOG, `/api/${handler}`, { method: "POST", body: JSON.stringify(body) })
    const { id } = await (await post("SubmitItem", { title: "busy", tags: ["a"] })).json()
    await server
      .sql`update horatio.microblog_item set title = 'vandalised' where host = ${BLOG} and id = ${id}`
    const writes = Array.from(
      { length: 60 },
      (_, i) =>
        i % 3 === 0
          ? post("SubmitItem", { title: `n${i}`, tags: ["a", "b"] })
          : post("SubmitComment", { itemId: id, text: `c${i}`, author: `g${i % 4}` }),
    )
    const repairs = [audit((a) => a.repair(BLOG)), audit((a) => a.repair(BLOG))]
    const statuses = (await Promise.all(writes)).map((r) => r.status)
    const [first, second] = await Promise.all(repairs)
    expect(statuses.every((s) => s === 200)).toBe(true)
    expect([...first.tables, ...second.tables]).toContain("horatio.microblog_item")
    const report = await audit((a) => a.verify(BLOG))
    expect(report.chain.breaks).toEqual([])
    expect(report.chain.events).toBe(61)
    expect(report.projections?.drifts).toEqual([])
    const [item] = await server.sql`select title, comment_count from horatio.microblog_item
      where host = ${BLOG} and id = ${id}`
    expect(item).toEqual({ title: "busy", comment_count: 40 })
  })
})
