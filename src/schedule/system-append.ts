/**
 * Appending Hamlet's own events to a host's log from outside its actor (cleanup jobs): one
 * host transaction that appends and projects, retried when the (host, seq) race with the
 * host's actor is lost — the actor itself reloads its head on its next conflict.
 */
import { Effect } from "effect"
import type { LoadedProject } from "../projects/loader.ts"
import { applyProjections } from "../projects/projection.ts"
import { type DatabaseError, type Sql, type SqlTx, UNIQUE_VIOLATION } from "../store/database.ts"
import { appendEvents, type PendingEvent, readHead } from "../store/event-log.ts"
import { makeProjectionWriter } from "../store/model-access.ts"
import { withHostTransaction } from "../store/transaction.ts"

const MAX_ATTEMPTS = 8

export const appendSystemEvents = (
  sql: Sql,
  project: LoadedProject,
  host: string,
  events: ReadonlyArray<PendingEvent>,
  /** Extra statements in the same transaction (e.g. deleting expired sessions). */
  alongside: (tx: SqlTx) => Effect.Effect<void, DatabaseError> = () => Effect.void,
): Effect.Effect<void, DatabaseError> => {
  const attempt = withHostTransaction(sql, host, (tx) =>
    Effect.gen(function* () {
      const head = yield* readHead(tx, host)
      const stored = yield* appendEvents(tx, head, host, project.name, events, new Date())
      yield* applyProjections(project.projections, stored, makeProjectionWriter(tx, project.name, host))
      yield* alongside(tx)
    }))
  return attempt.pipe(
    Effect.retry({ times: MAX_ATTEMPTS, while: (e) => e.code === UNIQUE_VIOLATION }),
  )
}
