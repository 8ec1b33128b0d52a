/**
 * Appending Hamlet's own events to a host's log from outside its actor (cleanup jobs): one
 * host transaction that appends and projects, retried with exponential back-off and jitter when
 * the (host, seq) race with the host's actor is lost — the actor itself reloads its head on its
 * next conflict. Once committed, the events are announced on the bus like a command's.
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

export const appendSystemEvents = (
  log: SystemLog,
  project: LoadedProject,
  host: string,
  events: ReadonlyArray<PendingEvent>,
  /** Extra statements in the same transaction (e.g. deleting expired sessions). */
  alongside: (tx: SqlTx) => Effect.Effect<void, DatabaseError> = () => Effect.void,
): Effect.Effect<ReadonlyArray<StoredEvent>, DatabaseError> => {
  const attempt = Effect.suspend(() => {
    // the projections' writes (a purge's deletes, one per id) go out back to back, not one
    // round trip each; the commit checks them all
    const pipeline = makePipeline()
    return withHostTransaction(log.sql, host, (tx) =>
      Effect.gen(function* () {
        const head = yield* readHead(tx, host)
        const stored = yield* appendEvents(tx, head, host, project.name, events, new Date())
        const writer = makeProjectionWriter(tx, project.name, host, pipeline)
        yield* applyProjections(project.projections, stored, writer)
        writer.sendQueued()
        yield* alongside(tx)
        return stored
      }), { pipeline })
  })
  return attempt.pipe(
    Effect.retry({ schedule: RACE_RETRY, times: MAX_RETRIES, while: isSeqRace }),
    Effect.tap((stored) => announceEvents(log.bus, project.name, stored)),
  )
}
