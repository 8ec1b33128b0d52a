/**
 * Dead letters in `hamlet_dlq`: requests published without a reply subject (fire and forget,
 * from another service on the bus) whose handling failed. Nobody waits for their answer, so
 * the error would be lost; here it is kept with the request, per host, for an operator to list,
 * send again or discard (admin/dead-letters-api.ts). A session token is never kept, nor more
 * than the beginning of a request too large to run (`requestBytes`).
 */
import { Effect } from "effect"
import { type DatabaseError, query, type Sql } from "./database.ts"

/** A failed request nobody was waiting for, as the host actor saw it. */
export interface DeadLetter {
  readonly host: string
  readonly project: string
  readonly subject: string
  /** The handler the subject names ("" when the subject names none). */
  readonly handler: string
  readonly requestId: string | undefined
  /** The request as it arrived, without its session (see `withoutSession`), or its beginning when `requestBytes` is set. */
  readonly payload: string
  /** Set when the request was too large to keep: its size; `payload` then holds only its first bytes. */
  readonly requestBytes?: number
  readonly error: { readonly code: string; readonly message: string; readonly issues?: unknown }
}

/** A dead letter as stored. */
export interface StoredDeadLetter {
  readonly id: string
  readonly subject: string
  readonly handler: string
  readonly requestId: string | null
  readonly payload: string
  /** The request's size when `payload` is only its beginning (it was too large to keep), else null. */
  readonly requestBytes: number | null
  readonly error: DeadLetter["error"]
  readonly attempts: number
  readonly createdAt: string
  readonly lastTriedAt: string | null
}

/**
 * Where a session key could begin in text that is not JSON: JSON spells a key with its own
 * characters or `\u` escapes, so `session` written any way holds `sess` or a `\u`. What follows
 * is not parsed (a value may be an object, an array, a string cut short): it all goes.
 */
const MAYBE_SESSION = /sess|\\u/i

/** `text` up to where a session key could begin; the rest is replaced by a note of its length. */
const _beforeAnySession = (text: string): string => {
  const at = text.search(MAYBE_SESSION)
  return at === -1 ? text : `${text.slice(0, at)}[redacted: ${text.length - at} characters]`
}

/**
 * The request's text without `meta.session` (a bearer credential has no place in a table an
 * operator reads). JSON that cannot hold a session key (no `session`, no `\u` escape that could
 * spell one) is kept as it arrived, so a retry sends the same bytes (numbers past a double's range
 * or precision included); other JSON is stored re-encoded without it (duplicate keys collapse to
 * the one JSON.parse kept); text that is not JSON is kept only up to where a session key could
 * begin (`MAYBE_SESSION`), with NULs, which Postgres text cannot hold, replaced.
 */
export const withoutSession = (text: string): string => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return _beforeAnySession(text).replaceAll("\u0000", "\uFFFD")
  }
  if (!text.includes("session") && !text.includes("\\u")) return text
  if (json && typeof json === "object" && !Array.isArray(json)) {
    const { meta } = json as { meta?: unknown }
    if (meta && typeof meta === "object" && !Array.isArray(meta)) {
      const { session: _session, ...rest } = meta as Record<string, unknown>
      return JSON.stringify({ ...json, meta: rest })
    }
  }
  return JSON.stringify(json)
}

/** Stores letters in one statement. */
export const insertDeadLetters = (
  sql: Sql,
  letters: ReadonlyArray<DeadLetter>,
): Effect.Effect<void, DatabaseError> =>
  query(() =>
    sql`insert into hamlet_dlq (host, project, subject, handler, request_id, payload, request_bytes, code, error)
        select * from unnest(
          ${letters.map((l) => l.host)}::text[], ${letters.map((l) => l.project)}::text[],
          ${letters.map((l) => l.subject)}::text[], ${letters.map((l) => l.handler)}::text[],
          ${letters.map((l) => l.requestId ?? null)}::text[], ${letters.map((l) => l.payload)}::text[],
          ${letters.map((l) => l.requestBytes ?? null)}::int[],
          ${letters.map((l) => l.error.code)}::text[], ${
      letters.map((l) => JSON.stringify(l.error))
    }::text[])`
  ).pipe(Effect.asVoid)

const toStored = (row: Record<string, unknown>): StoredDeadLetter => ({
  id: String(row.id),
  subject: String(row.subject),
  handler: String(row.handler ?? ""),
  requestId: row.request_id === null ? null : String(row.request_id),
  payload: String(row.payload),
  requestBytes: row.request_bytes === null ? null : Number(row.request_bytes),
  error: JSON.parse(String(row.error)),
  attempts: Number(row.attempts),
  createdAt: (row.created_at as Date).toISOString(),
  lastTriedAt: row.last_tried_at ? (row.last_tried_at as Date).toISOString() : null,
})

/** Which of a host's dead letters to list: a page, and optionally only one error code or handler. */
export interface DeadLetterPage {
  readonly afterId: bigint
  readonly limit: number
  readonly code?: string
  readonly handler?: string
}

/** A host's dead letters, oldest first, from after `afterId`, `limit` at most. */
export const listDeadLetters = (
  sql: Sql,
  host: string,
  page: DeadLetterPage,
): Effect.Effect<ReadonlyArray<StoredDeadLetter>, DatabaseError> =>
  query(() =>
    sql`select id, subject, handler, request_id, payload, request_bytes, error, attempts, created_at, last_tried_at
        from hamlet_dlq where host = ${host} and id > ${String(page.afterId)}
        ${page.code === undefined ? sql`` : sql`and code = ${page.code}`}
        ${page.handler === undefined ? sql`` : sql`and handler = ${page.handler}`}
        order by id limit ${page.limit}`
  ).pipe(Effect.map((rows) => rows.map(toStored)))

/** One dead letter of `host`, if it has one with this id. */
export const getDeadLetter = (
  sql: Sql,
  host: string,
  id: bigint,
): Effect.Effect<StoredDeadLetter | undefined, DatabaseError> =>
  query(() =>
    sql`select id, subject, handler, request_id, payload, request_bytes, error, attempts, created_at, last_tried_at
        from hamlet_dlq where host = ${host} and id = ${String(id)}`
  ).pipe(Effect.map((rows) => rows[0] ? toStored(rows[0]) : undefined))

/** Removes a dead letter; false when `host` has none with this id. */
export const removeDeadLetter = (sql: Sql, host: string, id: bigint): Effect.Effect<boolean, DatabaseError> =>
  query(() => sql`delete from hamlet_dlq where host = ${host} and id = ${String(id)} returning id`).pipe(
    Effect.map((rows) => rows.length === 1),
  )

/** Records a failed retry: the new error, one more attempt. */
export const markRetryFailed = (
  sql: Sql,
  host: string,
  id: bigint,
  error: DeadLetter["error"],
): Effect.Effect<void, DatabaseError> =>
  query(() =>
    sql`update hamlet_dlq set error = ${JSON.stringify(error)}, code = ${error.code},
          attempts = attempts + 1, last_tried_at = now()
        where host = ${host} and id = ${String(id)}`
  ).pipe(Effect.asVoid)
