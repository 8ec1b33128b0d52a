/**
 * The fleet-wide cleanup jobs. SoftDeleteCleanup purges soft-deleted rows past their
 * model's retention; SessionExpiry deletes expired sessions. Each purge is an event in the
 * affected host's log (so replay reproduces it), committed with the deletion. IdempotencyExpiry
 * and DeadLetterExpiry forget idempotency keys and dead letters past their retention (not part
 * of the log). A host that fails
 * is logged and skipped — the others are still cleaned — and the job then fails with
 * `TargetsFailed`, so its period is not completed and is run again (finding only what is left).
 */
import { Duration, Effect, type Schema } from "effect"
import type { EventDef } from "../projects/event.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { type DatabaseError, query, type SqlTx } from "../store/database.ts"
import { IDEMPOTENCY_RETENTION } from "../store/idempotency.ts"
import type { PendingEvent } from "../store/event-log.ts"
import { quoteIdentifier as q } from "../store/model-ddl.ts"
import { makeTargetFailures, type ScheduledJob, type TargetsFailed } from "./job.ts"
import { RowsPurged, SessionsExpired } from "./system-events.ts"
import { appendSystemEvents, type SystemLog } from "./system-append.ts"

/** Ids per purge event: keeps one event (and its jsonb) a reasonable size. */
const IDS_PER_EVENT = 1_000

const chunk = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

/** An event of Hamlet's own (system-events.ts) for a host's log, written by `job`. */
const pendingSystemEvent = <S extends Schema.Top>(
  def: EventDef<S>,
  data: S["Type"],
  job: string,
): PendingEvent => ({
  stream: def.stream(data),
  type: def.type,
  data,
  meta: { handler: job, system: true },
})

const CLEANUP_FAILED = "cleanup failed for a host; its period will be retried"

/** Purges, host by host, rows soft-deleted longer ago than their model's retention. */
export const softDeleteCleanup = (
  log: SystemLog,
  projects: ReadonlyArray<LoadedProject>,
  now: Date,
): Effect.Effect<number, DatabaseError | TargetsFailed> =>
  Effect.gen(function* () {
    const failures = makeTargetFailures("SoftDeleteCleanup", CLEANUP_FAILED)
    let purged = 0
    for (const project of projects) {
      for (const model of project.models) {
        if (!model.options.softDelete || model.options.retention === undefined) continue
        const cutoff = new Date(
          now.getTime() - Duration.toMillis(Duration.fromInputUnsafe(model.options.retention)),
        )
        const rows = yield* failures.attempt(
          `${project.name}.${model.table}`,
          query(() =>
            log.sql.unsafe(
              `select host, array_agg(id::text order by id) as ids from ${q(project.name)}.${q(model.table)}
               where deleted_at < $1 group by host order by host`,
              [cutoff],
            )
          ),
        )
        for (const row of rows ?? []) {
          const host = String(row.host)
          const ids = row.ids as Array<string>
          const events = chunk(ids, IDS_PER_EVENT).map((part) =>
            pendingSystemEvent(
              RowsPurged,
              { table: model.table, ids: part, deletedBefore: cutoff.toISOString() },
              "SoftDeleteCleanup",
            )
          )
          const done = yield* failures.attempt(host, appendSystemEvents(log, project, host, events))
          if (done) purged += ids.length
        }
      }
    }
    return yield* failures.settle(purged)
  })

/** Deletes expired sessions, recording a HamletSessionsExpired event per affected host. */
export const sessionExpiry = (
  log: SystemLog,
  projects: ReadonlyArray<LoadedProject>,
  now: Date,
): Effect.Effect<number, DatabaseError | TargetsFailed> =>
  Effect.gen(function* () {
    const failures = makeTargetFailures("SessionExpiry", CLEANUP_FAILED)
    const rows = yield* query(() =>
      log.sql`select s.host, h.project, array_agg(s.id order by s.id) as ids
          from hamlet_sessions s join hamlet_hosts h on h.host = s.host
          where s.expires_at < ${now} group by s.host, h.project order by s.host`
    )
    let expired = 0
    for (const row of rows) {
      const project = projects.find((p) => p.name === row.project)
      if (!project) continue
      const host = String(row.host)
      // a host's chunks in order; its first failure skips the rest of that host, not the others
      for (const ids of chunk(row.ids as Array<string>, IDS_PER_EVENT)) {
        const event = pendingSystemEvent(
          SessionsExpired,
          { ids, expiredBefore: now.toISOString() },
          "SessionExpiry",
        )
        // only those still expired: one renewed (or created again) since the list was read stays
        const deleteSessions = (tx: SqlTx) =>
          Effect.asVoid(
            query(() =>
              tx`delete from hamlet_sessions
                 where host = ${host} and id = any(${ids as string[]}) and expires_at < ${now}`
            ),
          )
        const done = yield* failures.attempt(
          host,
          appendSystemEvents(log, project, host, [event], deleteSessions),
        )
        if (done === undefined) break
        expired += ids.length
      }
    }
    return yield* failures.settle(expired)
  })

/**
 * How long a dead letter is kept (store/dead-letters.ts): a month for an operator to notice it,
 * send it again or discard it; a publisher sending bad requests for ever does not fill the disk.
 */
const DEAD_LETTER_RETENTION = Duration.days(30)
/** Rows deleted per statement: no long lock on the table while the node writes to it. */
const EXPIRY_BATCH = 10_000

/**
 * Deletes rows of `table` created before `now - retention`, a batch at a time. Neither table is
 * part of any host's log: nothing to record.
 */
const expireRows = (
  log: SystemLog,
  table: "hamlet_idempotency" | "hamlet_dlq",
  retention: Duration.Duration,
  now: Date,
): Effect.Effect<number, DatabaseError> =>
  Effect.gen(function* () {
    const cutoff = new Date(now.getTime() - Duration.toMillis(retention))
    let deleted = 0
    for (;;) {
      const rows = yield* query(() =>
        log.sql`delete from ${log.sql(table)} where ctid = any(array(
          select ctid from ${log.sql(table)} where created_at < ${cutoff} limit ${EXPIRY_BATCH}))`
      )
      deleted += rows.count
      if (rows.count < EXPIRY_BATCH) return deleted
    }
  })

/** Forgets idempotency keys older than `IDEMPOTENCY_RETENTION`. */
export const idempotencyExpiry = (log: SystemLog, now: Date): Effect.Effect<number, DatabaseError> =>
  expireRows(log, "hamlet_idempotency", IDEMPOTENCY_RETENTION, now)

/** Dead letters kept per host at most (the newest): a flood on one host stops filling the disk here. */
const DEAD_LETTERS_PER_HOST = 10_000

/** Deletes dead letters older than `DEAD_LETTER_RETENTION`, then each host's beyond its newest 10,000. */
export const deadLetterExpiry = (log: SystemLog, now: Date): Effect.Effect<number, DatabaseError> =>
  Effect.gen(function* () {
    const expired = yield* expireRows(log, "hamlet_dlq", DEAD_LETTER_RETENTION, now)
    const overflow = yield* query(() =>
      // each host's cutoff once (materialized): inlined, Postgres ran the subquery per row (36 s for 10,000)
      log.sql`with cutoff as materialized (
          select h.host, (select id from hamlet_dlq x where x.host = h.host
                          order by id desc offset ${DEAD_LETTERS_PER_HOST} limit 1) as last_dropped
          from (select distinct host from hamlet_dlq) h)
        delete from hamlet_dlq d using cutoff c
        where d.host = c.host and d.id <= c.last_dropped`
    )
    return expired + overflow.count
  })

/** The built-in cleanup jobs, each every `every`; `projects` is read at each run (reloads apply). */
export const cleanupJobs = (
  log: SystemLog,
  projects: () => ReadonlyArray<LoadedProject>,
  every: Duration.Duration,
): ReadonlyArray<ScheduledJob> => [
  { name: "SoftDeleteCleanup", every, run: (period) => softDeleteCleanup(log, projects(), period) },
  { name: "SessionExpiry", every, run: (period) => sessionExpiry(log, projects(), period) },
  { name: "IdempotencyExpiry", every, run: (period) => idempotencyExpiry(log, period) },
  { name: "DeadLetterExpiry", every, run: (period) => deadLetterExpiry(log, period) },
]
