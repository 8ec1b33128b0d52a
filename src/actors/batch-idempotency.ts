/**
 * A command batch's idempotency keys: the replies remembered for them, read once for the whole
 * batch, and the answer to a command whose key was used before — the remembered reply for the
 * same request, a conflict for another handler or other input.
 */
import { Effect } from "effect"
import type { Reply } from "../bus/envelope.ts"
import { replyError } from "../errors.ts"
import type { DatabaseError, SqlTx } from "../store/database.ts"
import { type IdempotentRecord, readIdempotentReplies } from "../store/idempotency.ts"
import type { RequestMetadata } from "../projects/handler.ts"

/** Replies remembered for the batch's idempotency keys (read once `gate` lets reads go). */
export const rememberedReplies = (
  tx: SqlTx,
  host: string,
  commands: ReadonlyArray<{ readonly meta: RequestMetadata }>,
  gate: Effect.Effect<void, DatabaseError>,
): Effect.Effect<Map<string, IdempotentRecord<Reply>>, DatabaseError> => {
  const keys = [...new Set(commands.flatMap((c) => c.meta.idempotencyKey ?? []))]
  if (keys.length === 0) return Effect.succeed(new Map())
  return Effect.andThen(gate, readIdempotentReplies<Reply>(tx, host, keys))
}

/**
 * The answer to a request whose `key` has `previous`, remembered: its reply when the request is
 * the same (its digest, or one remembered without), else a conflict.
 */
export const replayed = (previous: IdempotentRecord<Reply>, request: string | null, key: string): Reply =>
  previous.request === null || previous.request === request ? previous.reply : {
    ok: false,
    error: replyError(
      "conflict",
      `idempotency key ${JSON.stringify(key)} was already used for a different request`,
    ),
  }
