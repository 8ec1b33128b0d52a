/**
 * Pipelined writes inside one transaction: write statements are sent at once and not
 * awaited, so a command batch costs round trips only for the reads it makes. Statements on
 * one connection run in the order sent, so later reads see earlier writes; `flush` awaits
 * every write before commit and fails with the first error.
 */
import { Effect } from "effect"
import { type DatabaseError, toDatabaseError } from "./database.ts"

export interface Pipeline {
  /** Sends a statement now; its outcome is checked at `flush`. */
  readonly send: (statement: PromiseLike<unknown>) => void
  readonly flush: Effect.Effect<void, DatabaseError>
}

export const makePipeline = (): Pipeline => {
  const inFlight: Array<Promise<unknown>> = []
  let firstError: unknown
  return {
    send: (statement) => {
      inFlight.push(
        Promise.resolve(statement).catch((e) => {
          firstError ??= e
        }),
      )
    },
    flush: Effect.suspend(() =>
      Effect.promise(() => Promise.all(inFlight.splice(0))).pipe(
        Effect.flatMap(() =>
          firstError === undefined ? Effect.void : Effect.fail(toDatabaseError(firstError))
        ),
      )
    ),
  }
}
