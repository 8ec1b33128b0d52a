/**
 * The `Idempotency-Key` request header (IETF httpapi draft): an HTTP client's way to give a
 * command the envelope's `meta.idempotencyKey`, so a write whose answer was lost (a dropped
 * connection, a 5xx, a timeout) can be sent again and runs once. Bare or as a quoted string.
 */

export const IDEMPOTENCY_KEY_HEADER = "idempotency-key"

/** The longest key kept (the envelope's limit). */
const MAX_KEY_LENGTH = 256

export type IdempotencyKeyHeader =
  | { readonly _tag: "absent" }
  | { readonly _tag: "key"; readonly key: string }
  | { readonly _tag: "invalid"; readonly message: string }

export const readIdempotencyKey = (headers: Headers): IdempotencyKeyHeader => {
  const raw = headers.get(IDEMPOTENCY_KEY_HEADER)
  if (raw === null) return { _tag: "absent" }
  const trimmed = raw.trim()
  const key = trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"')
    ? trimmed.slice(1, -1)
    : trimmed
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
    return {
      _tag: "invalid",
      message: `the Idempotency-Key header must be 1 to ${MAX_KEY_LENGTH} characters`,
    }
  }
  return { _tag: "key", key }
}
