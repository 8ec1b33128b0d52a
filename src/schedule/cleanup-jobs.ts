/**
 * The fleet-wide cleanup jobs. SoftDeleteCleanup purges soft-deleted rows past their
 * model's retention; SessionExpiry deletes expired sessions. Each purge is an event in the
 * affected host's log (so replay reproduces it), committed with the deletion.
 */
import { Duration, Effect } from "effect"
import type { LoadedProject } from "../projects/loader.ts"
import { type DatabaseError, query, type Sql } from "../store/database.ts"
import { quoteIdentifier as q } from "../store/model-ddl.ts"
import { ROWS_PURGED, SESSIONS_EXPIRED } from "./system-events.ts"
import { appendSystemEvents } from "./system-append.ts"

/** Ids per purge event: keeps one event (and its jsonb) a reasonable size. */
const IDS_PER_EVENT = 1_000

const chunk = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

const systemMeta = (job: string) => ({ handler: job, system: true })

/** Purges, host by host, rows soft-deleted longer ago than their model's retention. */
export const softDeleteCleanup = (
  sql: Sql,
  projects: ReadonlyArray<LoadedProject>,
  now: Date,
): Effect.Effect<number, DatabaseError> =>
  Effect.gen(function* () {
    let purged = 0
    for (const project of projects) {
      for (const model of project.models) {
        if (!model.options.softDelete || model.options.retention === undefined) continue
        const cutoff = new Date(
          now.getTime() - Duration.toMillis(Duration.fromInputUnsafe(model.options.retention)),
        )
        const rows = yield* query(() =>
          sql.unsafe(
            `select host, array_agg(id::text order by id) as ids from ${q(project.name)}.${q(model.table)}
             where deleted_at < $1 group by host`,
            [cutoff],
          )
        )
        for (const row of rows) {
          const ids = row.ids as Array<string>
          const events = chunk(ids, IDS_PER_EVENT).map((part) => ({
            stream: `hamlet-purge-${model.table}`,
            type: ROWS_PURGED,
            data: { table: model.table, ids: part, deletedBefore: cutoff.toISOString() },
            meta: systemMeta("SoftDeleteCleanup"),
          }))
          yield* appendSystemEvents(sql, project, String(row.host), events)
          purged += ids.length
        }
      }
    }
    return purged
  })

/** Deletes expired sessions, recording a HamletSessionsExpired event per affected host. */
export const sessionExpiry = (
  sql: Sql,
  projects: ReadonlyArray<LoadedProject>,
  now: Date,
): Effect.Effect<number, DatabaseError> =>
  Effect.gen(function* () {
    const rows = yield* query(() =>
      sql`select s.host, h.project, array_agg(s.id order by s.id) as ids
          from hamlet_sessions s join hamlet_hosts h on h.host = s.host
          where s.expires_at < ${now} group by s.host, h.project`
    )
    let expired = 0
    for (const row of rows) {
      const project = projects.find((p) => p.name === row.project)
      if (!project) continue
      const host = String(row.host)
      const ids = row.ids as Array<string>
      for (const part of chunk(ids, IDS_PER_EVENT)) {
        const event = {
          stream: "hamlet-sessions",
          type: SESSIONS_EXPIRED,
          data: { ids: part, expiredBefore: now.toISOString() },
          meta: systemMeta("SessionExpiry"),
        }
        yield* appendSystemEvents(sql, project, host, [event], (tx) =>
          query(() =>
            tx`delete from hamlet_sessions where host = ${host} and id = any(${part as string[]})`
          ).pipe(
            Effect.asVoid,
          ))
      }
      expired += ids.length
    }
    return expired
  })
