/**
 * Fleet-wide scheduled actors: a tick is claimed by exactly one node per period (also
 * across restarts), and the loops of several nodes on one database run a job once per
 * period between them.
 */
import { Duration, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Database, type Sql } from "../../src/store/database.ts"
import { migrateCore } from "../../src/store/migrations.ts"
import { claimTick, periodStart } from "../../src/schedule/claim.ts"
import { runJobLoop, type ScheduledJob } from "../../src/schedule/scheduler.ts"
import { type StoreKind, testDatabase } from "../support/database.ts"
import { checkService } from "../support/services.ts"

const hasPostgres = await checkService("postgres")

const describeScheduler = (kind: StoreKind) =>
  describe(`scheduled ticks on ${kind}`, () => {
    const scope = Effect.runSync(Scope.make())
    let sql: Sql
    beforeAll(async () => {
      const context = await Effect.runPromise(Layer.buildWithScope(testDatabase(kind), scope))
      sql = (context.mapUnsafe.get(Database.key) as Database["Service"]).sql
      await Effect.runPromise(migrateCore(sql))
    }, 60_000)
    afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

    it("exactly one of several nodes claims a period, and a restarted node cannot claim it again", async () => {
      const period = periodStart(Date.now(), 60_000)
      const claims = await Promise.all(
        ["node-a", "node-b", "node-c"].map((node) =>
          Effect.runPromise(claimTick(sql, "OnceJob", period, node))
        ),
      )
      expect(claims.filter(Boolean)).toHaveLength(1)
      expect(await Effect.runPromise(claimTick(sql, "OnceJob", period, "node-a-restarted"))).toBe(false)
      const next = new Date(period.getTime() + 60_000)
      expect(await Effect.runPromise(claimTick(sql, "OnceJob", next, "node-b"))).toBe(true)
      expect(await Effect.runPromise(claimTick(sql, "OtherJob", period, "node-b"))).toBe(true)
    })

    it("two nodes' loops run a job once per period between them", async () => {
      const name = `Loop${Date.now()}`
      const runs: Array<string> = []
      const job: ScheduledJob = {
        name,
        every: Duration.millis(150),
        run: (period) => Effect.sync(() => (runs.push(period.toISOString()), 1)),
      }
      const fibers = ["node-a", "node-b"].map((node) => Effect.runFork(runJobLoop(sql, node, job)))
      const deadline = Date.now() + 10_000
      while (new Set(runs).size < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      await Promise.all(fibers.map((f) => Effect.runPromise(Fiber.interrupt(f))))
      expect(new Set(runs).size).toBeGreaterThanOrEqual(4)
      // every period ran once, never twice
      expect(runs.length).toBe(new Set(runs).size)
      // every period that ran was claimed (once: the key); a claim may lack its run when the
      // loops were interrupted between the claim and the job
      const claimed = await sql`select period_start from hamlet_schedule where name = ${name}`
      const claimedPeriods = new Set(claimed.map((r) => (r.period_start as Date).toISOString()))
      for (const period of runs) expect(claimedPeriods.has(period)).toBe(true)
      expect(claimed.length - runs.length).toBeLessThanOrEqual(2)
    })
  })

describeScheduler("pglite")
describe.skipIf(!hasPostgres)("on the real Postgres", () => {
  describeScheduler("postgres")
})
