/**
 * A host's command batches, chained: the next batch starts as soon as the one before it has
 * sent its COMMIT, instead of after the answer, so a host's handlers run while Postgres
 * commits (command-batch.ts says what a chained batch may do before that answer). At most
 * two batches are in flight; replies still follow their own commit.
 */
import { Deferred, Effect } from "effect"
import { actorCounters } from "./actor-metrics.ts"
import type { PendingCommit } from "./batch-chaining.ts"
import { type Command, type HostLog, isContended, processBatch } from "./command-batch.ts"

export interface CommitChain {
  /** Starts `commands` (in a child fiber); returns once the next batch may start. */
  readonly submit: (commands: ReadonlyArray<Command>) => Effect.Effect<void>
  /** Waits until every batch submitted so far has answered all its commands. */
  readonly settle: Effect.Effect<void>
}

export const makeCommitChain = (log: HostLog): CommitChain => {
  let previous: PendingCommit | undefined
  return {
    submit: (commands) =>
      Effect.gen(function* () {
        // a settled batch is nothing to chain behind: the next one reads the log's own state
        if (previous && Deferred.isDoneUnsafe(previous.settled)) previous = undefined
        // another node writes this host too: take turns with it under the host's lock, unchained
        if (previous && isContended(log)) {
          yield* Deferred.await(previous.settled)
          previous = undefined
        }
        if (previous) actorCounters.chainedBatches++
        const handoff = Deferred.makeUnsafe<PendingCommit | undefined>()
        yield* Effect.forkChild(processBatch(log, commands, { previous, handoff }))
        previous = yield* Deferred.await(handoff)
      }),
    settle: Effect.suspend(() => {
      const last = previous
      previous = undefined
      return last ? Deferred.await(last.settled) : Effect.void
    }),
  }
}
