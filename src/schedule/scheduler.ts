/**
 * Fleet-wide scheduled actors: every node runs every job's loop. At each period boundary the
 * nodes race for the period's lease in Postgres; the holder runs the job and marks the period
 * completed (period-run.ts). A period is done once it is completed, not once it is claimed: a
 * failed run is retried with back-off, a stopped node's claim is taken over when its lease runs
 * out, and a period left unfinished is tried again at the next ticks — by any node.
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { Supervisor } from "../actors/supervisor.ts"
import { Bus } from "../bus/bus.ts"
import { Database, type Sql } from "../store/database.ts"
import { periodStart, pruneClaims, unfinishedPeriods } from "./claim.ts"
import { cleanupJobs } from "./cleanup-jobs.ts"
import type { ScheduledJob } from "./job.ts"
import {
  attemptPeriod,
  DEFAULT_LEASE,
  type LeaseOptions,
  type PeriodOutcome,
  settlePeriod,
} from "./period-run.ts"
import { projectScheduleJob } from "./project-schedules.ts"

export type { ScheduledJob } from "./job.ts"

/** Claims of the last week are kept (for inspection, and for taking up unfinished periods). */
const KEEP_CLAIMS = Duration.days(7)

/** Unfinished earlier periods tried again at each tick, at most (the newest first). */
const CATCH_UP_PERIODS = 3

const logRan = (job: ScheduledJob, period: Date) => (outcome: PeriodOutcome) =>
  outcome._tag === "Ran"
    ? Effect.logInfo("scheduled job ran", {
      job: job.name,
      period: period.toISOString(),
      count: outcome.count,
    })
    : Effect.void

/**
 * Earlier periods that were claimed but never completed (every retry failed, or the node
 * stopped too near the period's end for a takeover): one try each, at this node's tick.
 */
const catchUp = (sql: Sql, nodeId: string, job: ScheduledJob, current: Date, options: LeaseOptions) =>
  Effect.gen(function* () {
    const since = new Date(current.getTime() - Duration.toMillis(KEEP_CLAIMS))
    const periods = yield* unfinishedPeriods(sql, job.name, since, current, CATCH_UP_PERIODS)
    yield* Effect.forEach(periods, (period) =>
      attemptPeriod(sql, nodeId, job, period, options).pipe(
        Effect.tap(logRan(job, period)),
        Effect.catch((error) =>
          error._tag === "PeriodHeld" ? Effect.void : Effect.logWarning("an unfinished period failed again", {
            job: job.name,
            period: period.toISOString(),
            error: error.message,
          })
        ),
      ), { discard: true })
  })

/** Runs `job` at every period boundary until interrupted; failures are logged, not fatal. */
export const runJobLoop = (
  sql: Sql,
  nodeId: string,
  job: ScheduledJob,
  options: LeaseOptions = DEFAULT_LEASE,
): Effect.Effect<never> =>
  Effect.gen(function* () {
    const everyMs = Duration.toMillis(job.every)
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      const period = periodStart(now, everyMs)
      yield* catchUp(sql, nodeId, job, period, options).pipe(
        Effect.andThen(settlePeriod(sql, nodeId, job, period, options)),
        Effect.tap(logRan(job, period)),
        // a job's own claims only, and never its current period's (a weekly job's outlives 7 days)
        Effect.andThen(
          pruneClaims(sql, job.name, new Date(now - Math.max(Duration.toMillis(KEEP_CLAIMS), 2 * everyMs))),
        ),
        // another node still ran it when the period ended: that node finishes it, or a later tick does
        Effect.catchTag("PeriodHeld", () => Effect.void),
        Effect.catchCause((cause) =>
          Effect.logError("scheduled period not completed; it is tried again at the next tick", {
            job: job.name,
            period: period.toISOString(),
          }, cause)
        ),
      )
      const next = period.getTime() + everyMs
      yield* Effect.sleep(Duration.millis(Math.max(1, next - (yield* Clock.currentTimeMillis))))
    }
  })

export class Scheduler extends Context.Service<Scheduler, {
  readonly nodeId: string
  readonly jobs: ReadonlyArray<ScheduledJob>
}>()("hamlet/Scheduler") {}

/** The built-in cleanup jobs, each every `every`, and the projects' schedules, on this node's fibers. */
export const SchedulerLive = (
  every: Duration.Duration,
): Layer.Layer<Scheduler, never, Database | Supervisor | Bus> =>
  Layer.effect(
    Scheduler,
    Effect.gen(function* () {
      const { sql } = yield* Database
      const supervisor = yield* Supervisor
      const bus = yield* Bus
      const nodeId = `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`
      const projects = () => [...supervisor.routing().projects.values()]
      // per-project schedules of the projects loaded at start (a project added later needs a restart)
      const jobs: ReadonlyArray<ScheduledJob> = [
        ...cleanupJobs({ sql, bus }, projects, every),
        ...projects().flatMap((project) =>
          project.schedules.map((schedule) => projectScheduleJob(bus, supervisor.routing, project, schedule))
        ),
      ]
      for (const job of jobs) yield* Effect.forkScoped(runJobLoop(sql, nodeId, job))
      return { nodeId, jobs }
    }),
  )
