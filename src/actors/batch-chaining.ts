/**
 * What a command batch builds on when it is chained behind one still committing
 * (commit-chain.ts): that batch's head, its stream versions, and the signals it gives —
 * whether its writes succeeded, whether it committed, when it has settled. Unchained, a batch
 * builds on the host's committed state.
 */
import { Deferred, Effect } from "effect"
import { DatabaseError } from "../store/database.ts"
import type { LogHead } from "../store/event-log.ts"
import { type StreamVersions, VersionLayer } from "../store/stream-versions.ts"

/** A batch's own signals to the batch chained behind it. */
export interface Signals {
  /** Its COMMIT's answer: whether it committed. */
  readonly committed: Deferred.Deferred<boolean>
  /** Done once it has answered every command (its retries included). */
  readonly settled: Deferred.Deferred<void>
}

/** A batch whose COMMIT is sent and not yet answered: the next batch is placed after it. */
export interface PendingCommit extends Signals {
  /** The log head after it (true once it commits). */
  readonly head: LogHead
  readonly versions: VersionLayer
  /**
   * Resolves once its writes have been answered: whether all succeeded. Then it holds every
   * row lock it will take, so the next batch may send its own writes (they wait in Postgres
   * for rows it holds).
   */
  readonly writesSucceeded: Promise<boolean>
}

/** How a batch is chained: the batch still committing before it, and where it hands over. */
export interface Chaining {
  readonly previous: PendingCommit | undefined
  /** Completed once, when this batch's COMMIT is sent (or with undefined when it is done). */
  readonly handoff: Deferred.Deferred<PendingCommit | undefined>
}

/** A chained batch's failure when the batch before it did not commit. */
export const PREVIOUS_FAILED = "hamlet_previous_batch_failed"

/** What a transaction builds on: the log head, the stream versions, and a wait for the batch before. */
export interface Base {
  readonly head: LogHead | undefined
  readonly versions: VersionLayer
  /** Chained: writes are held until the batch before has its writes answered, all successfully. */
  readonly previousWritesSucceeded: Promise<boolean> | undefined
  /** Before any read and before COMMIT: the batch before this one has committed. */
  readonly gate: Effect.Effect<void, DatabaseError>
}

/** The base after `previous`, or after the host's committed `head` and `versions` when there is none. */
export const baseAfter = (
  committed: { readonly head: LogHead | undefined; readonly versions: StreamVersions },
  previous: PendingCommit | undefined,
): Base => {
  if (!previous) {
    return {
      head: committed.head,
      versions: new VersionLayer(committed.versions),
      previousWritesSucceeded: undefined,
      gate: Effect.void,
    }
  }
  return {
    head: previous.head,
    previousWritesSucceeded: previous.writesSucceeded,
    versions: new VersionLayer(previous.versions),
    gate: Effect.flatMap(
      Deferred.await(previous.committed),
      (isCommitted) =>
        isCommitted ? Effect.void : Effect.fail(
          new DatabaseError({ message: "the batch before this one did not commit", code: PREVIOUS_FAILED }),
        ),
    ),
  }
}
