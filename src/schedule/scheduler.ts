/**
 * Fleet-wide scheduled actors: every node runs every job's loop; at each period boundary
 * the nodes race to claim the tick in Postgres and only the winner runs the job. A node
 * that restarts mid-period finds the tick claimed and waits for the next one.
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { Supervisor } from "../actors/supervisor.ts"
import { Database, type DatabaseError, type Sql } from "../store/database.ts"
import { claimTick, periodStart, pruneClaims } from "./claim.ts"
import { sessionExpiry, softDeleteCleanup } from "./cleanup-jobs.ts"
import { projectScheduleJob } from "./project-schedules.ts"
import { Bus } from "../bus/bus.ts"

export interface ScheduledJob {
  readonly name: string
  readonly every: Duration.Duration
  /** Runs the job for the period starting at `period`; resolves to a count for the log. */
  readonly run: (period: Date) => Effect.Effect<number, DatabaseError>
}

/** Claims of the last week are kept (for inspection); older ones are pruned. */
const KEEP_CLAIMS = Duration.days(7)

/** One tick: claim the current period and, if this node won, run the job. */
export const runTick = (sql: Sql, nodeId: string, job: ScheduledJob, now: number) =>
  Effect.gen(function* () {
    const period = periodStart(now, Duration.toMillis(job.every))
    const isMine = yield* claimTick(sql, job.name, period, nodeId)
    if (!isMine) return { ran: false as const }
    const count = yield* job.run(period)
    yield* Effect.logInfo("scheduled job ran", { job: job.name, period: period.toISOString(), count })
    return { ran: true as const, count }
  })

/** Runs `job` at every period boundary until interrupted; failures are logged, not fatal. */
export const runJobLoop = (sql: Sql, nodeId: string, job: ScheduledJob): Effect.Effect<never> =>
  Effect.gen(function* () {
    const everyMs = Duration.toMillis(job.every)
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      yield* runTick(sql, nodeId, job, now).pipe(
        Effect.andThen(pruneClaims(sql, new Date(now - Duration.toMillis(KEEP_CLAIMS)))),
        Effect.catchCause((cause) => Effect.logError("scheduled job failed", { job: job.name }, cause)),
      )
      const next = periodStart(now, everyMs).getTime() + everyMs
      yield* Effect.sleep(Duration.millis(Math.max(1, next - (yield* Clock.currentTimeMillis))))
    }
  })

export class Scheduler extends Context.Service<Scheduler, {
  readonly nodeId: string
  readonly jobs: ReadonlyArray<ScheduledJob>
}>()("hamlet/Scheduler") {}

/** The built-in cleanup jobs, each every `every`, running on this node's fibers. */
export const SchedulerLive = (
  every: Duration.Duration,
): Layer.Layer<Scheduler, never, Database | Supervisor | Bus> =>
  Layer.effect(
    Scheduler,
    Effect.gen(function* () {
      const { sql } = yield* Database
      const supervisor = yield* Supervisor
      const nodeId = `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`
      const projects = () => [...supervisor.routing().projects.values()]
      const bus = yield* Bus
      // per-project schedules of the projects loaded at start (a project added later needs a restart)
      const jobs: ReadonlyArray<ScheduledJob> = [
        { name: "SoftDeleteCleanup", every, run: (period) => softDeleteCleanup(sql, projects(), period) },
        { name: "SessionExpiry", every, run: (period) => sessionExpiry(sql, projects(), period) },
        ...projects().flatMap((project) =>
          project.schedules.map((schedule) => projectScheduleJob(bus, supervisor.routing, project, schedule))
        ),
      ]
      for (const job of jobs) yield* Effect.forkScoped(runJobLoop(sql, nodeId, job))
      return { nodeId, jobs }
    }),
  )
