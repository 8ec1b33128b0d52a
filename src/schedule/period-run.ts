/**
 * Running one period of a scheduled job under a lease (claim.ts): the node that takes the lease
 * runs the job, renewing the lease as it goes, and marks the period completed; a failed or
 * interrupted run gives the lease back, and the period is tried again with exponential back-off
 * until it completes or its time is up — by whichever node takes the lease next.
 */
import { Cause, Clock, Data, Duration, Effect, Exit, Schedule } from "effect"
import type { DatabaseError, Sql } from "../store/database.ts"
import { IDEMPOTENCY_RETENTION } from "../store/idempotency.ts"
import { abandonPeriod, type Claim, claimPeriod, completePeriod, releaseLease, renewLease } from "./claim.ts"
import type { JobError, ScheduledJob } from "./job.ts"

/**
 * This node's lease ran out while its job ran (renewals failed): another node may have taken
 * the period, so this run stops rather than do the work a second time.
 */
export class LeaseLost
  extends Data.TaggedError("LeaseLost")<{ readonly job: string; readonly period: Date }> {}

/** Another node holds a live lease on the period: try again later (it may fail, or stop). */
export class PeriodHeld extends Data.TaggedError("PeriodHeld")<{
  readonly job: string
  readonly period: Date
  readonly by: string
  readonly leaseUntil: Date
}> {}

export interface LeaseOptions {
  /**
   * How long a claim stays this node's without renewal: how soon another node takes over the
   * period of a node that stopped. Renewed every third of it while the job runs.
   */
  readonly lease: Duration.Duration
  /** The first retry's delay; each retry doubles it (with jitter), up to `lease`. */
  readonly retryFrom: Duration.Duration
}

export const DEFAULT_LEASE: LeaseOptions = { lease: Duration.seconds(30), retryFrom: Duration.seconds(1) }

export type PeriodOutcome =
  | { readonly _tag: "Ran"; readonly count: number; readonly attempt: number }
  | { readonly _tag: "Completed" }
  /** A retry past RETRY_HORIZON_MS: the period is marked done instead (its keys are forgotten). */
  | { readonly _tag: "Abandoned" }

const ABANDONED = "abandoned: a retry this long after the period began could run commands a second time " +
  "(their idempotency keys are forgotten after 8 days)"

const describeCause = (cause: Cause.Cause<unknown>): string =>
  Cause.hasInterruptsOnly(cause) ? "interrupted" : Cause.pretty(cause)

/**
 * Claims the period, first waiting out how far it is ahead of the database's clock when this
 * node's clock runs ahead (claim.ts refuses it until then): the period is then run on time, by
 * the database, by whichever node claims it first. The wait is measured by the database and
 * slept as a duration, which a skewed clock still measures right.
 */
const claimOnceStarted = (
  sql: Sql,
  name: string,
  period: Date,
  nodeId: string,
  lease: Duration.Duration,
): Effect.Effect<Exclude<Claim, { _tag: "NotStarted" }>, DatabaseError> =>
  Effect.gen(function* () {
    for (;;) {
      const claim = yield* claimPeriod(sql, name, period, nodeId, lease)
      if (claim._tag !== "NotStarted") return claim
      yield* Effect.sleep(Duration.millis(Math.ceil(claim.startsInMs)))
    }
  })

/**
 * One try at a period: claim it and, if this node got the lease, run the job and mark the
 * period completed. Fails with the job's error (the lease given back first), or `PeriodHeld`.
 */
export const attemptPeriod = (
  sql: Sql,
  nodeId: string,
  job: ScheduledJob,
  period: Date,
  options: LeaseOptions = DEFAULT_LEASE,
): Effect.Effect<PeriodOutcome, JobError | PeriodHeld | LeaseLost> =>
  Effect.gen(function* () {
    const claim = yield* claimOnceStarted(sql, job.name, period, nodeId, options.lease)
    if (claim._tag === "Completed") return claim
    if (claim._tag === "Held") {
      return yield* new PeriodHeld({ job: job.name, period, by: claim.by, leaseUntil: claim.leaseUntil })
    }
    // a retry (a restarted node, a catch-up) once the period's keys may be forgotten: not run again
    if (claim.attempt > 1 && (yield* Clock.currentTimeMillis) >= period.getTime() + RETRY_HORIZON_MS) {
      yield* abandonPeriod(sql, job.name, period, nodeId, ABANDONED)
      yield* Effect.logError("scheduled period abandoned", { job: job.name, period: period.toISOString() })
      return { _tag: "Abandoned" } as const
    }
    const every = Duration.divideUnsafe(options.lease, 3)
    const renewOnce = renewLease(sql, job.name, period, nodeId, options.lease).pipe(
      // a renewal that failed (the database busy) is tried again at the next beat
      Effect.catchCause((cause) =>
        Effect.logWarning("renewing a scheduled job's lease failed", cause).pipe(Effect.as(true))
      ),
    )
    // renews until the lease is found lost, then fails: racing the job, that stops it
    const renewing = Effect.sleep(every).pipe(
      Effect.andThen(
        Effect.repeat(renewOnce, { schedule: Schedule.spaced(every), while: (isMine) => isMine }),
      ),
      Effect.andThen(
        Effect.logWarning("scheduled job's lease was lost; stopping it (another node may run it)", {
          job: job.name,
          period: period.toISOString(),
        }),
      ),
      Effect.andThen(Effect.fail(new LeaseLost({ job: job.name, period }))),
    )
    const count = yield* Effect.raceFirst(
      Effect.andThen(job.run(period), (count) =>
        Effect.as(completePeriod(sql, job.name, period, nodeId), count)),
      renewing,
    ).pipe(
      // the renewal fiber has stopped (its scope closed) before the lease is given back
      Effect.onExit((exit) =>
        Exit.isFailure(exit)
          ? Effect.ignore(releaseLease(sql, job.name, period, nodeId, describeCause(exit.cause)))
          : Effect.void
      ),
    )
    return { _tag: "Ran", count, attempt: claim.attempt } as const
  })

/** Exponential back-off with jitter, each delay at most `lease` and never past `end`. */
export const retrySchedule = (end: number, options: LeaseOptions) =>
  Schedule.exponential(options.retryFrom).pipe(
    Schedule.jittered,
    Schedule.modifyDelay(({ duration }) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now) =>
          Math.max(0, Math.min(Duration.toMillis(duration), Duration.toMillis(options.lease), end - now)),
      )
    ),
  )

/** How long after its start a period is still retried, at most: a day less than keys are kept. */
export const RETRY_HORIZON_MS = Duration.toMillis(IDEMPOTENCY_RETENTION) - Duration.toMillis(Duration.days(1))

/**
 * Tries the period until it is completed (by this node or another) or the period is over (or
 * past RETRY_HORIZON_MS, for periods longer than that). A
 * failed run is logged and retried; a period another node holds is checked again, and taken
 * over once that node's lease runs out without completion. Fails with the last error when the
 * period ends first — not logged here: the caller reports it.
 */
export const settlePeriod = (
  sql: Sql,
  nodeId: string,
  job: ScheduledJob,
  period: Date,
  options: LeaseOptions = DEFAULT_LEASE,
): Effect.Effect<PeriodOutcome, JobError | PeriodHeld | LeaseLost> => {
  // a period is run again only while its commands' idempotency keys are kept (a day to spare):
  // past that, a retry would run them a second time on the hosts that had already done them
  const end = period.getTime() + Math.min(Duration.toMillis(job.every), RETRY_HORIZON_MS)
  // a failure is logged only when it is retried: the last one is the caller's to report
  const isRetried = (error: JobError | PeriodHeld | LeaseLost) =>
    Effect.gen(function* () {
      if ((yield* Clock.currentTimeMillis) >= end) return false
      if (error._tag !== "PeriodHeld") {
        yield* Effect.logWarning("scheduled job failed; it will be retried", {
          job: job.name,
          period: period.toISOString(),
          error: error.message,
        })
      }
      return true
    })
  return attemptPeriod(sql, nodeId, job, period, options).pipe(
    Effect.retry({ schedule: retrySchedule(end, options), while: isRetried }),
  )
}
