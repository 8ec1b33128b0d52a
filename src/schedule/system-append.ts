/**
 * Appending Hamlet's own events to a host's log from outside its actor (cleanup jobs): one
 * host transaction that changes what the job changes, appends events saying what it changed,
 * and projects them. The transaction takes the host's write lock first, so it queues behind
 * the host's other writers (contended command batches, other nodes' cleanup runs) and reads
 * the head and the rows after they committed; an actor that writes without the lock (it has
 * not met another writer lately) can still win the (host, seq) race, so a lost race is retried
 * with exponential back-off and jitter. Once committed, the events are announced on the bus
 * like a command's.
 */
import { Duration, Effect, Schedule } from "effect"
import type { Bus } from "../bus/bus.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { applyProjections } from "../projects/projection.ts"
import type { DatabaseError, Sql, SqlTx } from "../store/database.ts"
import { appendEvents, isSeqRace, type PendingEvent, readHead, type StoredEvent } from "../store/event-log.ts"
import { makeProjectionWriter } from "../store/model-access.ts"
import { makePipeline } from "../store/pipeline.ts"
import { withHostTransaction } from "../store/transaction.ts"
import { announceEvents } from "../bus/event-announce.ts"

/** Where system events go: the log, and once committed, the bus. */
export interface SystemLog {
  readonly sql: Sql
  readonly bus: Bus["Service"]
}

/** Retries after a lost (host, seq) race: the actor's batch usually commits within milliseconds. */
const RACE_RETRY = Schedule.exponential(Duration.millis(5)).pipe(Schedule.jittered)
const MAX_RETRIES = 8

/**
 * Runs `change` in one host transaction and appends the events it returns, built from what the
 * transaction itself found or changed (`delete … returning`): a run that another run (the next
 * period's, on another node) overtook finds nothing left, and logs nothing. No events, nothing
 * is appended (nor announced). `change` runs after the head is read: a writer that commits
 * anything in between makes this append lose the (host, seq) race, and the retry sees its rows.
 */
export const appendSystemEvents = (
  log: SystemLog,
  project: LoadedProject,
  host: string,
  change: (tx: SqlTx) => Effect.Effect<ReadonlyArray<PendingEvent>, DatabaseError>,
): Effect.Effect<ReadonlyArray<StoredEvent>, DatabaseError> => {
  const attempt = Effect.suspend(() => {
    // the projections' writes (a purge's deletes, one per id) go out back to back, not one
    // round trip each; the commit checks them all
    const pipeline = makePipeline()
    return withHostTransaction(log.sql, host, (tx) =>
      Effect.gen(function* () {
        const head = yield* readHead(tx, host)
        const events = yield* change(tx)
        if (events.length === 0) return []
        const stored = yield* appendEvents(tx, head, host, project.name, events, new Date())
        const writer = makeProjectionWriter(tx, project.name, host, pipeline)
        yield* applyProjections(project.projections, stored, writer)
        writer.sendQueued()
        return stored
      }), { pipeline, lockHost: true })
  })
  return attempt.pipe(
    Effect.retry({ schedule: RACE_RETRY, times: MAX_RETRIES, while: isSeqRace }),
    Effect.tap((stored) => announceEvents(log.bus, project.name, stored)),
  )
}
