/**
 * Pipelined writes inside one transaction: write statements are sent at once and not
 * awaited, so a command batch costs round trips only for the reads it makes. Statements on
 * one connection run in the order sent, so later reads see earlier writes; `flush` awaits
 * every write before commit and fails with the first error.
 *
 * A held pipeline queues its statements unsent until `release` (a chained command batch
 * must not take a row lock before the batch ahead of it holds all of its own: that batch
 * could be waiting for the same row while this one waits for that batch).
 */
import { Effect } from "effect"
import { type DatabaseError, toDatabaseError } from "./database.ts"

/** A statement built but not sent (postgres.js queries are lazy until `execute`). */
export interface LazyStatement {
  readonly execute: () => PromiseLike<unknown>
}

export interface Pipeline {
  /** Sends a statement now (or at `release`, when held); its outcome is checked at `flush`. */
  readonly send: (statement: LazyStatement) => void
  /** Sends what is held (`first`, if given, ahead of it), in order; from now on statements go out at once. */
  readonly release: (first?: LazyStatement) => void
  /** Whether statements are being held. */
  readonly isHeld: () => boolean
  /** Resolves once every statement sent so far has been answered: whether all of them succeeded. */
  readonly succeeded: () => Promise<boolean>
  readonly flush: Effect.Effect<void, DatabaseError>
}

export const makePipeline = (options: { readonly held?: boolean } = {}): Pipeline => {
  const inFlight: Array<Promise<unknown>> = []
  let held: Array<LazyStatement> | undefined = options.held ? [] : undefined
  let firstError: unknown
  const execute = (statement: LazyStatement) => {
    inFlight.push(
      Promise.resolve(statement.execute()).catch((e) => {
        firstError ??= e
      }),
    )
  }
  return {
    send: (statement) => held ? held.push(statement) : execute(statement),
    release: (first) => {
      const queued = held
      held = undefined
      if (first) execute(first)
      queued?.forEach(execute)
    },
    isHeld: () => held !== undefined,
    succeeded: () => Promise.all(inFlight).then(() => firstError === undefined),
    flush: Effect.suspend(() =>
      Effect.promise(() => Promise.all(inFlight.splice(0))).pipe(
        Effect.flatMap(() =>
          firstError === undefined ? Effect.void : Effect.fail(toDatabaseError(firstError))
        ),
      )
    ),
  }
}
