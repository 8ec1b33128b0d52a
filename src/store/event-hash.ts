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
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  if (value instanceof Date) return JSON.stringify(value.toISOString())
  const record = value as Record<string, unknown>
  const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(",")}}`
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

export const eventHash = (prevHash: string, event: HashedFields): string =>
  createHash("sha256").update(prevHash).update(canonicalJson(event)).digest("hex")
