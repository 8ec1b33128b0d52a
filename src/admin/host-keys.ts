/**
 * Per-host admin keys in `host_secrets`: minted by the project key, shown once, stored
 * only as a sha256 hash, revocable; rotation is "mint a new one, revoke the old one".
 * A key reads `hk_<keyId>_<secret>`; the key id finds the row, the hash decides.
 */
import { Effect } from "effect"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { type DatabaseError, query, type Sql } from "../store/database.ts"

const KEY = /^hk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/

const hashSecret = (secret: string) => createHash("sha256").update(secret, "utf8").digest("hex")

export interface HostKeyInfo {
  readonly keyId: string
  readonly createdAt: string
  readonly revokedAt: string | null
}

/** Mints a key for `host`; the returned `key` is the only time the secret is seen. */
export const createHostKey = (
  sql: Sql,
  host: string,
): Effect.Effect<{ readonly keyId: string; readonly key: string }, DatabaseError> => {
  const keyId = randomBytes(8).toString("hex")
  const secret = randomBytes(32).toString("base64url")
  return query(() =>
    sql`insert into host_secrets (host, key_id, key_hash) values (${host}, ${keyId}, ${hashSecret(secret)})`
  ).pipe(Effect.as({ keyId, key: `hk_${keyId}_${secret}` }))
}

export const listHostKeys = (
  sql: Sql,
  host: string,
): Effect.Effect<ReadonlyArray<HostKeyInfo>, DatabaseError> =>
  query(() =>
    sql`select key_id, created_at, revoked_at from host_secrets where host = ${host} order by created_at`
  )
    .pipe(Effect.map((rows) =>
      rows.map((r) => ({
        keyId: String(r.key_id),
        createdAt: (r.created_at as Date).toISOString(),
        revokedAt: r.revoked_at ? (r.revoked_at as Date).toISOString() : null,
      }))
    ))

/** Revokes a key; false when the host has no such unrevoked key. */
export const revokeHostKey = (sql: Sql, host: string, keyId: string): Effect.Effect<boolean, DatabaseError> =>
  query(() =>
    sql`update host_secrets set revoked_at = now()
        where host = ${host} and key_id = ${keyId} and revoked_at is null returning key_id`
  ).pipe(Effect.map((rows) => rows.length === 1))

/** Whether `token` reads as a host key could (`hk_<keyId>_<secret>`), whatever host it is of. */
export const isHostKeyShaped = (token: string): boolean => KEY.test(token)

/** Whether `token` is an unrevoked admin key of `host` (constant-time hash comparison). */
export const isHostKey = (sql: Sql, host: string, token: string): Effect.Effect<boolean, DatabaseError> => {
  const match = KEY.exec(token)
  if (!match) return Effect.succeed(false)
  const [, keyId, secret] = match
  return query(() =>
    sql`select key_hash from host_secrets where host = ${host} and key_id = ${keyId} and revoked_at is null`
  ).pipe(Effect.map((rows) => {
    if (rows.length !== 1) return false
    const stored = Buffer.from(String(rows[0].key_hash), "hex")
    const presented = Buffer.from(hashSecret(secret), "hex")
    return stored.length === presented.length && timingSafeEqual(stored, presented)
  }))
}
