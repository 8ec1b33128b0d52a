/**
 * Idempotency records: the reply a command with an idempotency key got, per host, so a
 * repeat (a retry, a second node) gets the same reply instead of running again. A command
 * batch reads its keys' records in one statement and writes its new ones in one.
 */
import { Effect } from "effect"
import { type DatabaseError, query, type SqlTx } from "./database.ts"

/** The stored replies of `keys` (those that have one). */
export const readIdempotentReplies = (
  tx: SqlTx,
  host: string,
  keys: ReadonlyArray<string>,
): Effect.Effect<Map<string, unknown>, DatabaseError> =>
  query(() => tx`select key, reply from hamlet_idempotency where host = ${host} and key = any(${[...keys]})`)
    .pipe(Effect.map((rows) => new Map(rows.map((r) => [String(r.key), r.reply as unknown]))))

/** The insert of `keys` with their replies (one statement; not yet sent). */
export const insertIdempotentReplies = (
  tx: SqlTx,
  host: string,
  keys: ReadonlyArray<string>,
  replies: ReadonlyMap<string, unknown>,
) =>
  tx`insert into hamlet_idempotency (host, key, reply)
     select ${host}, u.key, u.reply::jsonb from unnest(${tx.typed([...keys], 0)}::text[],
       ${tx.typed(keys.map((k) => JSON.stringify(replies.get(k))), 0)}::text[]) as u(key, reply)`
