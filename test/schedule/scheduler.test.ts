/**
 * Fleet-wide scheduled actors: a period is leased to one node at a time and done once it is
 * completed, not once it is claimed — a failed run is retried with back-off, an interrupted one
 * gives its lease back, a stopped node's claim is taken over when its lease runs out, and the
 * loops of several nodes on one database run a job once per period between them.
 */
import { Clock, Deferred, Duration, Effect, Exit, Fiber, Layer, Logger, Schedule, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Database, DatabaseError, type Sql } from "../../src/store/database.ts"
import { migrateCore } from "../../src/store/migrations.ts"
import { claimPeriod, completePeriod, periodStart, pruneClaims } from "../../src/schedule/claim.ts"
import {
  attemptPeriod,
  type LeaseOptions,
  RETRY_HORIZON_MS,
  retrySchedule,
  settlePeriod,
} from "../../src/schedule/period-run.ts"
import { IDEMPOTENCY_RETENTION } from "../../src/store/idempotency.ts"
import { runJobLoop, type ScheduledJob } from "../../src/schedule/scheduler.ts"
import { type StoreKind, testDatabase } from "../support/database.ts"
import { until } from "../support/eventually.ts"
import { checkService } from "../support/services.ts"

const hasPostgres = await checkService("postgres")

/** Tests' periods: an hour, so one never ends while a test waits on it (a minute did, at :59). */
const PERIOD = Duration.hours(1)
const FAST: LeaseOptions = { lease: Duration.seconds(30), retryFrom: Duration.millis(20) }

/** A job that fails its first `failures` runs, then succeeds; it records every run's period. */
const flakyJob = (name: string, failures = 0, every: Duration.Duration = PERIOD) => {
  const runs: Array<{ period: string; at: number; ok: boolean }> = []
  const job: ScheduledJob = {
    name,
    every,
    run: (period) =>
      Effect.suspend(() => {
        const ok = runs.length >= failures
        runs.push({ period: period.toISOString(), at: performance.now(), ok })
        return ok ? Effect.succeed(1) : Effect.fail(new DatabaseError({ message: "connection reset" }))
      }),
  }
  return { job, runs }
}

const describeScheduler = (kind: StoreKind) =>
  describe(`scheduled periods on ${kind}`, () => {
    const scope = Effect.runSync(Scope.make())
    let sql: Sql
    beforeAll(async () => {
      const context = await Effect.runPromise(Layer.buildWithScope(testDatabase(kind), scope))
      sql = (context.mapUnsafe.get(Database.key) as Database["Service"]).sql
      await Effect.runPromise(migrateCore(sql))
    }, 60_000)
    afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

    const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
    const claimRow = async (name: string) =>
      (await sql`select claimed_by, attempts, completed_at, last_error from hamlet_schedule
                 where name = ${name}`)[0]

    it("exactly one of several nodes claims a period, and while its lease lasts nobody else does", async () => {
      const period = periodStart(Date.now(), Duration.toMillis(PERIOD))
      const claims = await Promise.all(
        ["node-a", "node-b", "node-c"].map((node) => run(claimPeriod(sql, "OnceJob", period, node, PERIOD))),
      )
      expect(claims.filter((c) => c._tag === "Won")).toHaveLength(1)
      expect(await run(claimPeriod(sql, "OnceJob", period, "node-a-restarted", PERIOD))).toMatchObject({
        _tag: "Held",
      })
      // an earlier period (a later one may not have started yet: claimPeriod refuses it)
      const other = new Date(period.getTime() - 60_000)
      expect(await run(claimPeriod(sql, "OnceJob", other, "node-b", PERIOD))).toMatchObject({ _tag: "Won" })
      expect(await run(claimPeriod(sql, "OtherJob", period, "node-b", PERIOD))).toMatchObject({ _tag: "Won" })
    })

    it("a completed period is never claimed again, even once its lease has run out", async () => {
      const period = periodStart(Date.now(), Duration.toMillis(PERIOD))
      expect(await run(claimPeriod(sql, "DoneJob", period, "node-a", Duration.millis(1)))).toMatchObject({
        _tag: "Won",
      })
      await run(completePeriod(sql, "DoneJob", period, "node-a"))
      await until("the lease to run out", async () =>
        (await sql`select lease_until < now() as is_over from hamlet_schedule
                   where name = 'DoneJob' and period_start = ${period}`)[0].is_over)
      expect(await run(claimPeriod(sql, "DoneJob", period, "node-b", PERIOD))).toEqual({ _tag: "Completed" })
    })

    it("a period whose first claimant failed is run by another node", async () => {
      const { job, runs } = flakyJob(`Nightly${Date.now()}`, 1)
      const period = periodStart(Date.now(), Duration.toMillis(job.every))
      const first = await run(Effect.exit(attemptPeriod(sql, "node-a", job, period, FAST)))
      expect(Exit.isFailure(first)).toBe(true)
      // the failed run gave its lease back: the next node takes the period at once
      expect(await run(attemptPeriod(sql, "node-b", job, period, FAST))).toEqual({
        _tag: "Ran",
        count: 1,
        attempt: 2,
      })
      expect(await run(attemptPeriod(sql, "node-a-restarted", job, period, FAST))).toEqual({
        _tag: "Completed",
      })
      expect(runs.map((r) =>
        r.ok
      )).toEqual([false, true])
      expect(await claimRow(job.name)).toMatchObject({ claimed_by: "node-b", attempts: 2, last_error: null })
      expect((await claimRow(job.name)).completed_at).not.toBeNull()
    })

    it("a claim whose node stopped is taken over by another node once its lease runs out", async () => {
      const { job, runs } = flakyJob(`Orphaned${Date.now()}`)
      const period = periodStart(Date.now(), Duration.toMillis(job.every))
      // node-a claims and stops before running anything (no release: it is gone)
      await run(claimPeriod(sql, job.name, period, "node-a", Duration.millis(300)))
      const early = await run(Effect.exit(attemptPeriod(sql, "node-b", job, period, FAST)))
      expect(JSON.stringify(early)).toContain("PeriodHeld")
      expect(runs).toHaveLength(0)
      expect(await run(settlePeriod(sql, "node-b", job, period, FAST))).toMatchObject({
        _tag: "Ran",
        attempt: 2,
      })
      expect(runs).toHaveLength(1)
      expect(await claimRow(job.name)).toMatchObject({ claimed_by: "node-b" })
    })

    it("a run longer than its lease keeps renewing it, so no other node takes the period meanwhile", async () => {
      const release = Effect.runSync(Deferred.make<void>())
      const name = `Long${Date.now()}`
      let runs = 0
      const long: ScheduledJob = {
        name,
        every: PERIOD,
        run: () => Effect.sync(() => runs++).pipe(Effect.andThen(Deferred.await(release)), Effect.as(1)),
      }
      // what node-b would run, were it given the period
      const intruder: ScheduledJob = { ...long, run: () => Effect.sync(() => runs++).pipe(Effect.as(1)) }
      const period = periodStart(Date.now(), Duration.toMillis(PERIOD))
      const short = { lease: Duration.millis(300), retryFrom: Duration.millis(20) }
      const fiber = Effect.runFork(attemptPeriod(sql, "node-a", long, period, short))
      await until("the long run to start", () => runs === 1)
      const deadline = Date.now() + 1_000 // three leases
      while (Date.now() < deadline) {
        const other = await run(Effect.exit(attemptPeriod(sql, "node-b", intruder, period, short)))
        expect(JSON.stringify(other)).toContain("PeriodHeld")
        await new Promise((r) => setTimeout(r, 100))
      }
      await run(Deferred.succeed(release, undefined))
      expect(await run(Fiber.join(fiber))).toMatchObject({ _tag: "Ran", attempt: 1 })
      expect(runs).toBe(1)
    })

    it("pruning forgets one job's old claims, not another's", async () => {
      const [mine, theirs] = [`PruneA${Date.now()}`, `PruneB${Date.now()}`]
      const old = new Date(Date.UTC(2026, 0, 1))
      for (const name of [mine, theirs]) await run(claimPeriod(sql, name, old, "node-a", PERIOD))
      await run(pruneClaims(sql, mine, new Date(Date.UTC(2026, 0, 2))))
      const left = await sql`select name from hamlet_schedule where name in (${mine}, ${theirs})`
      expect(left.map((r) => r.name)).toEqual([theirs])
    })

    it("a run whose lease another node took is stopped, so the period's work is not done twice", async () => {
      const name = `Taken${Date.now()}`
      let started = 0
      let finished = 0
      const slow: ScheduledJob = {
        name,
        every: PERIOD,
        run: () =>
          Effect.sync(() => started++).pipe(
            Effect.andThen(Effect.sleep(Duration.seconds(2))),
            Effect.andThen(Effect.sync(() => finished++)),
            Effect.as(1),
          ),
      }
      const period = periodStart(Date.now(), Duration.toMillis(PERIOD))
      const short = { lease: Duration.millis(300), retryFrom: Duration.millis(20) }
      const fiber = Effect.runFork(attemptPeriod(sql, "node-a", slow, period, short))
      await until("the run to start", () => started === 1)
      // node-a stalled past its lease (as if paused) and node-b took the period over
      await sql`update hamlet_schedule set claimed_by = 'node-b', lease_until = now() + interval '1 hour'
        where name = ${name} and period_start = ${period}`
      const exit = await run(Effect.exit(Fiber.join(fiber)))
      expect(JSON.stringify(exit)).toContain("LeaseLost")
      await new Promise((r) => setTimeout(r, 2_200))
      expect(finished).toBe(0)
      const [row] = await sql`select claimed_by, completed_at from hamlet_schedule
        where name = ${name} and period_start = ${period}`
      expect(row).toMatchObject({ claimed_by: "node-b", completed_at: null })
    })

    it("a run interrupted by its node's shutdown gives its lease back at once", async () => {
      const started = Effect.runSync(Deferred.make<void>())
      const name = `Stopped${Date.now()}`
      const hanging: ScheduledJob = {
        name,
        every: PERIOD,
        run: () => Deferred.succeed(started, undefined).pipe(Effect.andThen(Effect.never)),
      }
      const period = periodStart(Date.now(), Duration.toMillis(PERIOD))
      const fiber = Effect.runFork(attemptPeriod(sql, "node-a", hanging, period, FAST))
      await run(Deferred.await(started))
      await run(Fiber.interrupt(fiber))
      const { job, runs } = flakyJob(name)
      expect(await run(attemptPeriod(sql, "node-b", job, period, FAST))).toMatchObject({
        _tag: "Ran",
        attempt: 2,
      })
      expect(runs).toHaveLength(1)
    })

    it("a failing run is retried with growing back-off until it completes", async () => {
      const { job, runs } = flakyJob(`Retried${Date.now()}`, 3)
      const period = periodStart(Date.now(), Duration.toMillis(job.every))
      const options = { lease: Duration.seconds(30), retryFrom: Duration.millis(40) }
      expect(await run(settlePeriod(sql, "node-a", job, period, options))).toMatchObject({
        _tag: "Ran",
        attempt: 4,
      })
      expect(runs.map((r) => r.ok)).toEqual([false, false, false, true])
      // at least the back-off's shortest waits between runs (a loaded machine only lengthens them)
      const gaps = runs.slice(1).map((r, i) => r.at - runs[i].at)
      gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(40 * 2 ** i * 0.8 - 2))
    })

    it("a period longer than the idempotency keys are kept is not retried past them", async () => {
      const every = Duration.days(30)
      const { job, runs } = flakyJob(`Monthly${Date.now()}`, 1, every)
      // started just over 7 days ago: its commands' keys are forgotten after 8 days
      const period = new Date(Date.now() - RETRY_HORIZON_MS - 60_000)
      const exit = await Effect.runPromise(Effect.exit(settlePeriod(sql, "node-a", job, period, FAST)))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(runs).toHaveLength(1)
      expect(RETRY_HORIZON_MS).toBeLessThan(Duration.toMillis(IDEMPOTENCY_RETENTION))
      // nor at a later try (a restarted node, a catch-up): the period is marked done, saying why
      expect(await run(attemptPeriod(sql, "node-b", job, period, FAST))).toEqual({ _tag: "Abandoned" })
      expect(runs).toHaveLength(1)
      const row = await claimRow(job.name)
      expect(row.completed_at).not.toBeNull()
      expect(row.last_error).toMatch(/^abandoned: a retry this long after the period began/)
    })

    it("retrySchedule() doubles its delay from retryFrom, ±20% jitter, capped by the lease and the period's end", async () => {
      const delaysOf = (end: number, lease: Duration.Duration, steps: number) =>
        Effect.runPromise(Effect.gen(function* () {
          const step = yield* Schedule.toStep(retrySchedule(end, { lease, retryFrom: Duration.millis(40) }))
          const delays: Array<number> = []
          for (let i = 0; i < steps; i++) {
            delays.push(Duration.toMillis((yield* step(Date.now(), undefined))[1]))
          }
          return delays
        }))
      const far = Date.now() + 3_600_000
      const delays = await delaysOf(far, Duration.seconds(30), 4)
      delays.forEach((delay, i) => {
        expect(delay).toBeGreaterThanOrEqual(40 * 2 ** i * 0.8)
        expect(delay).toBeLessThanOrEqual(40 * 2 ** i * 1.2)
      })
      expect(Math.max(...await delaysOf(far, Duration.millis(100), 6))).toBeLessThanOrEqual(100)
      expect(Math.max(...await delaysOf(Date.now() + 50, Duration.seconds(30), 6))).toBeLessThanOrEqual(50)
    })

    it("a period that fails until it ends logs each retried failure once, and its last failure once", async () => {
      const { job, runs } = flakyJob(`Failing${Date.now()}`, Infinity, Duration.millis(300))
      // each line with the runs of its period so far (a later tick's catch-up runs it again)
      const logged: Array<{ text: string; period?: string; runs: number }> = []
      const capture = Logger.make(({ message }) => {
        const [text, fields] = message as [string, { period?: string } | undefined]
        logged.push({
          text,
          period: fields?.period,
          runs: runs.filter((r) => r.period === fields?.period).length,
        })
      })
      const fiber = Effect.runFork(
        runJobLoop(sql, "node-a", job, FAST).pipe(Effect.provide(Logger.layer([capture]))),
      )
      // a period given up after a retry at least (the first may start too near its end for one)
      const givenUp = () =>
        logged.find((l) => l.text.startsWith("scheduled period not completed") && l.runs > 1)
      await until("a period to be given up after retries", () => givenUp() !== undefined)
      await run(Fiber.interrupt(fiber))
      const { period, runs: settled } = givenUp()!
      const lines = (text: string) =>
        logged.filter((l) => l.period === period && l.text.startsWith(text)).length
      expect(lines("scheduled job failed; it will be retried")).toBe(settled - 1)
      expect(lines("scheduled period not completed")).toBe(1)
    })

    it("a period left unfinished is taken up at a later tick", async () => {
      const { job, runs } = flakyJob(`Unfinished${Date.now()}`, 0, Duration.millis(200))
      const earlier = periodStart(Date.now() - 1_000, 200)
      await run(claimPeriod(sql, job.name, earlier, "node-gone", Duration.millis(1)))
      const fiber = Effect.runFork(runJobLoop(sql, "node-b", job, FAST))
      await until("the earlier period to be run", () => runs.some((r) => r.period === earlier.toISOString()))
      await run(Fiber.interrupt(fiber))
      const [row] = await sql`select completed_at from hamlet_schedule
                              where name = ${job.name} and period_start = ${earlier}`
      expect(row.completed_at).not.toBeNull()
    })

    it("a period that has not started by the database's clock is not claimed", async () => {
      const name = `Early${Date.now()}`
      const [{ now }] = await sql`select now()`
      const period = new Date((now as Date).getTime() + 60_000)
      const claim = await run(claimPeriod(sql, name, period, "node-ahead", PERIOD))
      expect(claim).toMatchObject({ _tag: "NotStarted" })
      const startsInMs = claim._tag === "NotStarted" ? claim.startsInMs : 0
      expect(startsInMs).toBeGreaterThan(50_000)
      expect(startsInMs).toBeLessThanOrEqual(60_000)
      expect(await claimRow(name)).toBeUndefined()
    })

    it("a node whose clock runs ahead runs each period once the database's clock has reached it", async () => {
      const every = Duration.seconds(1)
      // what a node's clock 1.5 s ahead gives its loop: each period it computes starts in the future
      const ahead = Effect.clockWith((clock) =>
        Effect.succeed<Clock.Clock>({
          currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe() + 1_500,
          currentTimeMillis: Effect.sync(() => clock.currentTimeMillisUnsafe() + 1_500),
          currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe() + 1_500_000_000n,
          currentTimeNanos: Effect.sync(() => clock.currentTimeNanosUnsafe() + 1_500_000_000n),
          monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
          monotonicTimeNanos: clock.monotonicTimeNanos,
          sleep: (duration) => clock.sleep(duration),
        })
      )
      const runs: Array<{ period: Date; dbNow: Date }> = []
      const job: ScheduledJob = {
        name: `Ahead${Date.now()}`,
        every,
        run: (period) =>
          Effect.promise(() => sql`select now()`).pipe(
            Effect.map(([{ now }]) => runs.push({ period, dbNow: now as Date })),
          ),
      }
      const fiber = Effect.runFork(
        Effect.flatMap(ahead, (clock) =>
          runJobLoop(sql, "node-ahead", job, FAST).pipe(Effect.provideService(Clock.Clock, clock))),
      )
      await until("two periods run", () =>
        runs.length >= 2)
      await run(Fiber.interrupt(fiber))
      // the job's cutoff (its period) is never in the database's future
      for (const { period, dbNow } of runs) {
        expect(dbNow.getTime()).toBeGreaterThanOrEqual(period.getTime())
      }
    })

    it("two nodes' loops run a job once per period between them", async () => {
      const { job, runs } = flakyJob(`Loop${Date.now()}`, 0, Duration.millis(150))
      const fibers = ["node-a", "node-b"].map((node) =>
        Effect.runFork(runJobLoop(sql, node, job, FAST))
      )
      const periods = () => new Set(runs.map((r) => r.period))
      await until("four periods", () => periods().size >= 4)
      await Promise.all(fibers.map((f) => run(Fiber.interrupt(f))))
      // every period ran once, never twice
      expect(runs.length).toBe(periods().size)
      // and every period that ran is completed; a claim may lack its run only when the loops were
      // interrupted during it — and then it is not completed, so it would be run again
      const claimed =
        await sql`select period_start, completed_at from hamlet_schedule where name = ${job.name}`
      const completed = claimed.filter((r) => r.completed_at !== null)
        .map((r) => (r.period_start as Date).toISOString())
      for (const period of completed) expect(periods().has(period)).toBe(true)
      expect(runs.length - completed.length).toBeLessThanOrEqual(2)
    })
  })

describeScheduler("pglite")
describe.skipIf(!hasPostgres)("on the real Postgres", () => {
  describeScheduler("postgres")
})
