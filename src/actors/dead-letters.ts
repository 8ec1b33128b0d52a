/**
 * The DeadLetters service: host actors hand it a failed request nobody waits for (published
 * without a reply subject) and go on at once; one fiber per node writes what is queued in one
 * statement, whenever no write is in flight (the group commit of the event log, for
 * `hamlet_dlq`). Bounded in letters and bytes: a flood of bad publishes costs a bounded amount
 * of memory and one insert per batch, one host's flood leaves room for the others' letters, and
 * what does not fit is counted as dropped and logged (one summary a second).
 * Closing the scope writes what is still queued (bounded wait).
 */
import { Cause, Context, Duration, Effect, Fiber, Queue, Schedule, type Scope } from "effect"
import type { Sql } from "../store/database.ts"
import { type DeadLetter, insertDeadLetters } from "../store/dead-letters.ts"
import { actorCounters } from "./actor-metrics.ts"

/** Letters queued at most. */
const MAX_QUEUED = 10_000
/** Letters of one host queued at most: a flood on one host leaves room for the others'. */
const MAX_QUEUED_PER_HOST = 1_000
/** Payload bytes (UTF-16 units, near enough) queued at most. */
const MAX_QUEUED_CHARS = 16 * 1024 * 1024
/** Letters per insert at most. */
const MAX_BATCH = 500
/** A failing insert is tried again this way before its letters are dropped. */
const INSERT_RETRY = Schedule.exponential(Duration.millis(100)).pipe(Schedule.jittered)
const INSERT_RETRIES = 5
/** Letters dropped for want of room are logged as one summary this often. */
const OVERFLOW_REPORT_EVERY = Duration.seconds(1)

export class DeadLetters extends Context.Service<DeadLetters, {
  /** Queues a dead letter to be stored; never blocks, never fails (a letter that does not fit is dropped). */
  readonly record: (letter: DeadLetter) => void
}>()("hamlet/DeadLetters") {}

const sizeOf = (letter: DeadLetter) => letter.payload.length + letter.error.message.length

export const makeDeadLetters = (sql: Sql): Effect.Effect<DeadLetters["Service"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.bounded<DeadLetter, Cause.Done>(MAX_QUEUED)
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    let queuedChars = 0
    const queuedByHost = new Map<string, number>()
    /** Letters that did not fit since the last report, by host: a flood is one log line a second. */
    let overflow: Map<string, number> | undefined

    const drop = (letters: ReadonlyArray<DeadLetter>, reason: string) =>
      Effect.sync(() => {
        actorCounters.deadLettersDropped += letters.length
      }).pipe(Effect.andThen(Effect.logError("dead letters dropped", {
        reason,
        count: letters.length,
        hosts: [...new Set(letters.map((l) => l.host))],
      })))

    const reportOverflow = Effect.sleep(OVERFLOW_REPORT_EVERY).pipe(
      Effect.andThen(Effect.suspend(() => {
        const byHost = Object.fromEntries(overflow ?? [])
        overflow = undefined
        return Effect.logError("dead letters dropped: too many waiting to be written", { byHost })
      })),
    )

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
        for (const letter of letters) {
          queuedChars -= sizeOf(letter)
          const left = queuedByHost.get(letter.host)! - 1
          left === 0 ? queuedByHost.delete(letter.host) : queuedByHost.set(letter.host, left)
        }
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
        const ofHost = queuedByHost.get(letter.host) ?? 0
        if (
          ofHost < MAX_QUEUED_PER_HOST && queuedChars + size <= MAX_QUEUED_CHARS &&
          Queue.offerUnsafe(queue, letter)
        ) {
          queuedChars += size
          queuedByHost.set(letter.host, ofHost + 1)
          return
        }
        actorCounters.deadLettersDropped++
        if (!overflow) {
          overflow = new Map()
          runFork(reportOverflow)
        }
        overflow.set(letter.host, (overflow.get(letter.host) ?? 0) + 1)
      },
    }
  })
