/**
 * The per-host hash chain: hash = sha256(prevHash ‖ canonical event), where the canonical
 * form is JSON with sorted keys of the stored fields, so an auditor can recompute it from
 * what Postgres returns (jsonb keeps neither key order nor spacing).
 */
import { createHash } from "node:crypto"

/** The hash before a host's first event. */
export const GENESIS_HASH = "0".repeat(64)

/** Deterministic JSON: object keys sorted at every depth, no spacing. */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) {
    let out = "["
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i])
    return out + "]"
  }
  if (value instanceof Date) return JSON.stringify(value.toISOString())
  const record = value as Record<string, unknown>
  const keys = Object.keys(record)
  // objects built by code usually come with their keys in order already: sort only if not
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] > keys[i]) {
      keys.sort()
      break
    }
  }
  let out = "{"
  for (const key of keys) {
    const v = record[key]
    if (v === undefined) continue
    out += (out.length === 1 ? "" : ",") + JSON.stringify(key) + ":" + canonicalJson(v)
  }
  return out + "}"
}

/** The stored fields that the chain covers. */
export interface HashedFields {
  readonly host: string
  readonly seq: number
  readonly project: string
  readonly stream: string
  readonly version: number
  readonly type: string
  readonly data: unknown
  readonly meta: unknown
  /** ISO-8601 with milliseconds, as `Date.toISOString()` prints it. */
  readonly recordedAt: string
}

/** `canonicalJson(event)` for exactly the hashed fields, written out in their sorted order. */
const canonicalEvent = (e: HashedFields): string =>
  (e.data === undefined ? "{" : `{"data":${canonicalJson(e.data)},`) +
  `"host":${JSON.stringify(e.host)},` +
  (e.meta === undefined ? "" : `"meta":${canonicalJson(e.meta)},`) +
  `"project":${JSON.stringify(e.project)},"recordedAt":${JSON.stringify(e.recordedAt)},"seq":${
    JSON.stringify(e.seq)
  },"stream":${JSON.stringify(e.stream)},"type":${JSON.stringify(e.type)},"version":${
    JSON.stringify(e.version)
  }}`

export const eventHash = (prevHash: string, event: HashedFields): string =>
  createHash("sha256").update(prevHash + canonicalEvent(event)).digest("hex")
