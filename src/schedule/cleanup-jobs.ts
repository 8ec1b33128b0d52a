/**
 * The fleet-wide cleanup jobs. SoftDeleteCleanup purges soft-deleted rows past their
 * model's retention; SessionExpiry deletes expired sessions. Each purge is an event in the
 * affected host's log (so replay reproduces it), committed with the deletion and built from what
 * its transaction found due — never from an earlier read, which an overlapping run (the next
 * period's, on another node) may have acted on already. IdempotencyExpiry and DeadLetterExpiry
 * forget idempotency keys and dead letters past their retention (not part of the log). A host
 * that fails is logged and skipped — the others are still cleaned — and the job then fails with
 * `TargetsFailed`, so its period is not completed and is run again (finding only what is left).
 */
import { Duration, Effect, type Schema } from "effect"
import type { EventDef } from "../projects/event.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { type DatabaseError, query, type SqlTx } from "../store/database.ts"
import { IDEMPOTENCY_RETENTION } from "../store/idempotency.ts"
import type { PendingEvent, StoredEvent } from "../store/event-log.ts"
import { quoteIdentifier as q } from "../store/model-ddl.ts"
import { makeTargetFailures, type ScheduledJob, type TargetsFailed } from "./job.ts"
import { RowsPurged, sessionIdDigest, SessionsExpired } from "./system-events.ts"
import { appendSystemEvents, type SystemLog } from "./system-append.ts"

/** Ids per purge event, and per transaction: one event (its jsonb) and one lock hold stay small. */
const IDS_PER_EVENT = 1_000

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

/** Rows in stored purges (their `ids`) or expiries (their `count`): what the job did, for its count. */
const idsIn = (events: ReadonlyArray<StoredEvent>): number =>
  events.reduce((n, e) => {
    const data = e.data as { readonly ids?: ReadonlyArray<string>; readonly count?: number }
    return n + (data.count ?? data.ids?.length ?? 0)
  }, 0)

/**
 * Runs `chunk` (one transaction, at most IDS_PER_EVENT ids) until it finds less than a chunk
 * left: however large a host's backlog, each transaction holds the host's write lock briefly,
 * well within its bound. A failure is recorded for the host and ends its chunks, not the job.
 * The ids handled.
 */
const inChunks = (
  failures: ReturnType<typeof makeTargetFailures>,
  host: string,
  chunk: Effect.Effect<ReadonlyArray<StoredEvent>, unknown>,
): Effect.Effect<number> =>
  Effect.gen(function* () {
    let handled = 0
    for (;;) {
      const stored = yield* failures.attempt(host, chunk)
      if (stored === undefined) return handled
      const count = idsIn(stored)
      handled += count
      if (count < IDS_PER_EVENT) return handled
    }
  })

const CLEANUP_FAILED = "cleanup failed for a host; its period will be retried"

/**
 * Purges, host by host, rows soft-deleted longer ago than their model's retention. The hosts
 * are found outside any transaction; which rows a host's purge lists is read in its transaction
 * (system-append.ts), so a run that another run overtook finds them gone and logs no purge.
 */
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
        const table = `${q(project.name)}.${q(model.table)}`
        const hosts = yield* failures.attempt(
          `${project.name}.${model.table}`,
          query(() =>
            log.sql.unsafe(`select distinct host from ${table} where deleted_at < $1 order by host`, [cutoff])
          ),
        )
        for (const row of hosts ?? []) {
          const host = String(row.host)
          // no row lock: the projection's purge deletes only rows still soft-deleted before the
          // cutoff (purge-rows.ts), as a replay does; locking them before the log's insert could
          // deadlock with an actor's batch that inserted its events first
          const purge = (tx: SqlTx) =>
            query(() =>
              tx.unsafe(
                `select id::text as id from ${table} where host = $1 and deleted_at < $2
                 order by id limit ${IDS_PER_EVENT}`,
                [host, cutoff],
              )
            ).pipe(Effect.map((rows) =>
              rows.length === 0 ? [] : [
                pendingSystemEvent(
                  RowsPurged,
                  {
                    table: model.table,
                    ids: rows.map((r) => String(r.id)),
                    deletedBefore: cutoff.toISOString(),
                  },
                  "SoftDeleteCleanup",
                ),
              ]
            ))
          purged += yield* inChunks(failures, host, appendSystemEvents(log, project, host, purge))
        }
      }
    }
    return yield* failures.settle(purged)
  })

/**
 * Deletes expired sessions, recording a HamletSessionsExpired event per affected host and
 * `IDS_PER_EVENT` sessions. The event counts what its transaction's delete removed, and lists
 * each id's sha256, never the id (it may be the session's bearer token): a session renewed
 * meanwhile, or expired already by another run (the next period's, on another node), is not in
 * it; nothing removed, no event.
 */
export const sessionExpiry = (
  log: SystemLog,
  projects: ReadonlyArray<LoadedProject>,
  now: Date,
): Effect.Effect<number, DatabaseError | TargetsFailed> =>
  Effect.gen(function* () {
    const failures = makeTargetFailures("SessionExpiry", CLEANUP_FAILED)
    const hosts = yield* query(() =>
      log.sql`select distinct s.host, h.project
          from hamlet_sessions s join hamlet_hosts h on h.host = s.host
          where s.expires_at < ${now} order by s.host`
    )
    let expired = 0
    for (const row of hosts) {
      const project = projects.find((p) => p.name === row.project)
      if (!project) continue
      const host = String(row.host)
      const expire = (tx: SqlTx) =>
        query(() =>
          tx`delete from hamlet_sessions where host = ${host} and id in (
               select id from hamlet_sessions where host = ${host} and expires_at < ${now}
               order by id limit ${IDS_PER_EVENT})
             and expires_at < ${now}
             returning id`
        ).pipe(Effect.map((rows) => {
          const idSha256 = rows.map((r) => sessionIdDigest(String(r.id))).sort()
          return idSha256.length === 0 ? [] : [
            pendingSystemEvent(
              SessionsExpired,
              { count: idSha256.length, idSha256, expiredBefore: now.toISOString() },
              "SessionExpiry",
            ),
          ]
        }))
      expired += yield* inChunks(failures, host, appendSystemEvents(log, project, host, expire))
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
