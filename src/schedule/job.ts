/**
 * What a fleet-wide scheduled job is: a name, a period, and the work for one period. The work
 * must be safe to run again — a period whose run failed, or whose node stopped, is run again.
 */
import type { Duration } from "effect"
import { Effect, Schema } from "effect"
import type { DatabaseError } from "../store/database.ts"

/**
 * A job that did what it could but left some of its targets (hosts, tables) undone: the period is
 * not completed, so it is run again — the targets already done find nothing left to do.
 */
export class TargetsFailed extends Schema.TaggedError<TargetsFailed>()("TargetsFailed", {
  job: Schema.String,
  /** The hosts (or `project.table`s) that failed, each logged when it did. */
  failed: Schema.Array(Schema.String),
  /** What the job got done meanwhile (rows purged, sessions expired…). */
  count: Schema.Number,
}) {
  override get message(): string {
    return `${this.job}: ${this.failed.join(", ")} failed (${this.count} done meanwhile)`
  }
}

export type JobError = DatabaseError | TargetsFailed

/**
 * The targets (hosts, `project.table`s) of one run of `job` that failed: `attempt` runs a target's
 * work and, when it fails, logs `failedMessage` with the target and its error and records the
 * target instead of ending the run; `settle` makes a non-empty record the run's `TargetsFailed`.
 */
export const makeTargetFailures = (job: string, failedMessage: string) => {
  const failed = new Set<string>()
  return {
    /** `work`'s value, or undefined when it failed (logged and recorded). */
    attempt: <A, E>(target: string, work: Effect.Effect<A, E>): Effect.Effect<A | undefined> =>
      work.pipe(
        Effect.map((value): A | undefined => value),
        Effect.catch((error) =>
          Effect.logWarning(failedMessage, { job, target, error }).pipe(
            Effect.andThen(Effect.sync(() => void failed.add(target))),
            Effect.as(undefined),
          )
        ),
      ),
    settle: (count: number): Effect.Effect<number, TargetsFailed> =>
      failed.size === 0
        ? Effect.succeed(count)
        : Effect.fail(new TargetsFailed({ job, failed: [...failed], count })),
  }
}

export interface ScheduledJob {
  readonly name: string
  readonly every: Duration.Duration
  /** Runs the job for the period starting at `period`; resolves to a count for the log. */
  readonly run: (period: Date) => Effect.Effect<number, JobError>
}
