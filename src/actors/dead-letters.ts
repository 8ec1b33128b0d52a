/**
 * The DeadLetters service: host actors hand it a failed request nobody waits for (published
 * without a reply subject) and go on at once; one fiber per node writes what is queued in one
 * statement, whenever no write is in flight (the group commit of the event log, for
 * `hamlet_dlq`). Bounded in letters and bytes: a flood of bad publishes costs a bounded amount
 * of memory and one insert per batch, and what does not fit is counted as dropped and logged.
 * Closing the scope writes what is still queued (bounded wait).
 */
import { Cause, Context, Duration, Effect, Fiber, Queue, Schedule, type Scope } from "effect"
import type { Sql } from "../store/database.ts"
import { type DeadLetter, insertDeadLetters } from "../store/dead-letters.ts"
import { actorCounters } from "./actor-metrics.ts"

/** Letters queued at most. */
const MAX_QUEUED = 10_000
/** Payload bytes (UTF-16 units, near enough) queued at most. */
const MAX_QUEUED_CHARS = 16 * 1024 * 1024
/** Letters per insert at most. */
const MAX_BATCH = 500
/** A failing insert is tried again this way before its letters are dropped. */
const INSERT_RETRY = Schedule.exponential(Duration.millis(100)).pipe(Schedule.jittered)
const INSERT_RETRIES = 5

export class DeadLetters extends Context.Service<DeadLetters, {
  /** Queues a dead letter to be stored; never blocks, never fails (a letter that does not fit is dropped). */
  readonly record: (letter: DeadLetter) => void
}>()("hamlet/DeadLetters") {}

const sizeOf = (letter: DeadLetter) => letter.payload.length + letter.error.message.length

export const makeDeadLetters = (sql: Sql): Effect.Effect<DeadLetters["Service"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.bounded<DeadLetter, Cause.Done>(MAX_QUEUED)
    let queuedChars = 0

    const drop = (letters: ReadonlyArray<DeadLetter>, reason: string) =>
      Effect.sync(() => {
        actorCounters.deadLettersDropped += letters.length
      }).pipe(Effect.andThen(Effect.logError("dead letters dropped", {
        reason,
        count: letters.length,
        hosts: [...new Set(letters.map((l) => l.host))],
      })))

    const write = (letters: ReadonlyArray<DeadLetter>) =>
      insertDeadLetters(sql, letters).pipe(
        Effect.retry({ schedule: INSERT_RETRY, times: INSERT_RETRIES }),
        Effect.matchEffect({
          onFailure: (error) => drop(letters, error.message),
          onSuccess: () => Effect.sync(() => void (actorCounters.deadLetters += letters.length)),
        }),
      )

    const writer = yield* Effect.gen(function* () {
      for (;;) {
        const letters = yield* Queue.takeBetween(queue, 1, MAX_BATCH)
        for (const letter of letters) queuedChars -= sizeOf(letter)
        yield* write(letters)
      }
    }).pipe(Effect.catchIf(Cause.isDone, () => Effect.void), Effect.forkDetach)

    // what is queued when the node stops is written before the database closes
    yield* Effect.addFinalizer(() =>
      Queue.end(queue).pipe(
        Effect.andThen(Fiber.join(writer).pipe(Effect.timeout(5_000), Effect.ignore)),
        Effect.andThen(Fiber.interrupt(writer)),
      )
    )

    return {
      record: (letter) => {
        const size = sizeOf(letter)
        if (queuedChars + size > MAX_QUEUED_CHARS || !Queue.offerUnsafe(queue, letter)) {
          Effect.runFork(drop([letter], "too many dead letters waiting to be written"))
          return
        }
        queuedChars += size
      },
    }
  })
