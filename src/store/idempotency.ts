/**
 * Idempotency records: the reply a command with an idempotency key got, per host, so a
 * repeat (a retry, a second node) gets the same reply instead of running again. A record
 * also keeps a digest of the request (handler and input): the same key on another request
 * is a caller's mistake, answered as a conflict rather than with the other request's reply.
 * A command batch reads its keys' records in one statement and writes its new ones in one.
 */
import { Duration, Effect } from "effect"
import { createHash } from "node:crypto"
import { canonicalJson } from "./event-hash.ts"
import { type DatabaseError, query, type SqlTx } from "./database.ts"

/**
 * How long an idempotency key's reply is kept (the IdempotencyExpiry job forgets older ones): a
 * retry within it gets the first reply. Longer than a week so that a weekly project schedule
 * retried late in its period still finds its key; a period is retried only while its keys are
 * kept (schedule/period-run.ts).
 */
export const IDEMPOTENCY_RETENTION = Duration.days(8)

export interface IdempotentRecord<R> {
  readonly reply: R
  /** `requestDigest` of the request that got it; null for records older than digests. */
  readonly request: string | null
}

/** What identifies a request for its idempotency key: its handler and its (decoded) input. */
export const requestDigest = (handler: string, input: unknown): string =>
  createHash("sha256").update(`${handler}\u0000${canonicalJson(input)}`).digest("hex")

/** The stored records of `keys` (those that have one). */
export const readIdempotentReplies = <R>(
  tx: SqlTx,
  host: string,
  keys: ReadonlyArray<string>,
): Effect.Effect<Map<string, IdempotentRecord<R>>, DatabaseError> =>
  query(() =>
    tx`select key, reply, request from hamlet_idempotency where host = ${host} and key = any(${[...keys]})`
  ).pipe(
    Effect.map((rows) =>
      new Map(
        rows.map((
          r,
        ) => [String(r.key), { reply: r.reply as R, request: (r.request ?? null) as string | null }]),
      )
    ),
  )

/** The insert of `keys` with their records (one statement; not yet sent). */
export const insertIdempotentReplies = <R>(
  tx: SqlTx,
  host: string,
  keys: ReadonlyArray<string>,
  records: ReadonlyMap<string, IdempotentRecord<R>>,
) =>
  tx`insert into hamlet_idempotency (host, key, reply, request)
     select ${host}, u.key, u.reply::jsonb, u.request from unnest(${tx.typed([...keys], 0)}::text[],
       ${tx.typed(keys.map((k) => JSON.stringify(records.get(k)?.reply)), 0)}::text[],
       ${tx.typed(keys.map((k) => records.get(k)?.request ?? null), 0)}::text[]) as u(key, reply, request)`
