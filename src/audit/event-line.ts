/**
 * The NDJSON export row: one event per line with every field the hash chain covers
 * (host, project, seq, stream, version, type, data, meta, recordedAt), the hash it links to
 * (`prevHash`) and its own hash, so every line, the first of a partial export too, verifies
 * offline. The CLI's `--format ndjson` and the admin API write the same rows.
 */
import { Schema } from "effect"
import type { HashedFields } from "../store/event-hash.ts"
import type { StoredEvent } from "../store/event-log.ts"

const Seq = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1))
const Hash = Schema.String.check(Schema.isPattern(/^[0-9a-f]{64}$/))

/**
 * A logged event with its link: `prevHash` is the hash of the event at seq − 1 (the genesis hash
 * for seq 1), absent when the log lacks that event (a gap only a tampered log has).
 */
export interface LinkedEvent extends StoredEvent {
  readonly prevHash?: string
}

export const EventLine = Schema.Struct({
  host: Schema.String,
  project: Schema.String,
  seq: Seq,
  stream: Schema.String,
  version: Seq,
  type: Schema.String,
  data: Schema.Unknown,
  meta: Schema.Record(Schema.String, Schema.Unknown),
  /** ISO-8601 with milliseconds, exactly as hashed. */
  recordedAt: Schema.String,
  /** Absent in files exported before it was added: their first event's content cannot be checked. */
  prevHash: Schema.optionalKey(Hash),
  hash: Hash,
})
export type EventLine = typeof EventLine.Type

export const toEventLine = (event: LinkedEvent): EventLine => ({
  host: event.host,
  project: event.project,
  seq: event.seq,
  stream: event.stream,
  version: event.version,
  type: event.type,
  data: event.data,
  meta: event.meta,
  recordedAt: event.recordedAt.toISOString(),
  ...(event.prevHash === undefined ? {} : { prevHash: event.prevHash }),
  hash: event.hash,
})

/** One line of NDJSON (with its newline). */
export const encodeEventLine = (event: LinkedEvent): string => `${JSON.stringify(toEventLine(event))}\n`

/** Parses and checks one NDJSON line; throws with the schema's message when it is not an event. */
export const decodeEventLine = (text: string): EventLine =>
  Schema.decodeUnknownSync(EventLine)(JSON.parse(text), { onExcessProperty: "error" })

/** The fields the chain hashes, from a stored event or an exported line. */
export const hashedFields = (event: StoredEvent | EventLine): HashedFields => ({
  host: event.host,
  seq: event.seq,
  project: event.project,
  stream: event.stream,
  version: event.version,
  type: event.type,
  data: event.data,
  meta: event.meta,
  recordedAt: typeof event.recordedAt === "string" ? event.recordedAt : event.recordedAt.toISOString(),
})
