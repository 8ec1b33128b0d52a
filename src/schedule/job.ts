/**
 * What a fleet-wide scheduled job is: a name, a period, and the work for one period. The work
 * must be safe to run again — a period whose run failed, or whose node stopped, is run again.
 */
import type { Duration, Effect } from "effect"
import { Schema } from "effect"
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

export interface ScheduledJob {
  readonly name: string
  readonly every: Duration.Duration
  /** Runs the job for the period starting at `period`; resolves to a count for the log. */
  readonly run: (period: Date) => Effect.Effect<number, JobError>
}
