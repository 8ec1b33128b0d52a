/**
 * Which part of a host's log an export, verify or replay covers: a seq window, a time
 * window and optionally one stream. Shared by the CLI flags and the admin API's query
 * parameters, so both narrow the log the same way.
 */
import { Schema } from "effect"
import type { SqlTx } from "../store/database.ts"

export interface EventRange {
  /** First seq included. */
  readonly fromSeq?: number
  /** Last seq included. */
  readonly toSeq?: number
  /** Events recorded at or after this instant. */
  readonly since?: Date
  /** Events recorded at or before this instant. */
  readonly until?: Date
  /** One stream (aggregate) only. */
  readonly stream?: string
}

export class BadRange extends Schema.TaggedError<BadRange>()("BadRange", { message: Schema.String }) {}

/** A positive integer seq, or BadRange naming the parameter. */
export const parseSeq = (name: string, text: string): number => {
  if (!/^\d{1,15}$/.test(text) || Number(text) < 1) {
    throw new BadRange({ message: `${name} must be a positive integer seq, got ${JSON.stringify(text)}` })
  }
  return Number(text)
}

const INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i

/**
 * An ISO-8601 instant, or BadRange. A bare date is midnight UTC, and a time without an offset is
 * UTC too: the bound must not depend on the zone the server runs in. A date or time that does not
 * exist (February 30th, 24:00) is refused, not rolled over.
 */
export const parseInstant = (name: string, text: string): Date => {
  const bad = () => new BadRange({ message: `${name} must be an ISO-8601 time, got ${JSON.stringify(text)}` })
  const parts = INSTANT.exec(text)
  if (!parts) throw bad()
  const [, year, month, day, hour = "00", minute = "00", second = "00", fraction = "", offset = "Z"] = parts
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)))
  const exists = date.getUTCFullYear() === Number(year) && date.getUTCMonth() === Number(month) - 1 &&
    date.getUTCDate() === Number(day) && Number(hour) < 24 && Number(minute) < 60 && Number(second) < 60
  if (!exists) throw bad()
  const zone = offset.toUpperCase() === "Z" ? "Z" : `${offset.slice(0, 3)}:${offset.slice(-2)}`
  const ms = Date.parse(`${year}-${month}-${day}T${hour}:${minute}:${second}${fraction.slice(0, 4)}${zone}`)
  if (Number.isNaN(ms)) throw bad()
  return new Date(ms)
}

/** Builds a range from optional textual bounds (CLI flags, query parameters); throws BadRange. */
export const parseRange = (bounds: {
  readonly from?: string | null
  readonly to?: string | null
  readonly since?: string | null
  readonly until?: string | null
  readonly stream?: string | null
}): EventRange => ({
  ...(bounds.from ? { fromSeq: parseSeq("from", bounds.from) } : {}),
  ...(bounds.to ? { toSeq: parseSeq("to", bounds.to) } : {}),
  ...(bounds.since ? { since: parseInstant("since", bounds.since) } : {}),
  ...(bounds.until ? { until: parseInstant("until", bounds.until) } : {}),
  ...(bounds.stream ? { stream: bounds.stream } : {}),
})

/** Whether the range is the whole log (verification needs the chain from seq 1). */
export const isWholeLog = (range: EventRange): boolean =>
  range.fromSeq === undefined && range.toSeq === undefined && range.since === undefined &&
  range.until === undefined && range.stream === undefined

/**
 * The SQL condition for `host` and `range`, events after `afterSeq` (keyset paging).
 * Always leads with `host = …` so Postgres prunes to the host's partition.
 */
export const rangeCondition = (tx: SqlTx, host: string, range: EventRange, afterSeq = 0) => {
  const from = Math.max(range.fromSeq ?? 1, afterSeq + 1)
  return tx`host = ${host} and seq >= ${from}
    ${range.toSeq !== undefined ? tx`and seq <= ${range.toSeq}` : tx``}
    ${range.since ? tx`and recorded_at >= ${range.since}` : tx``}
    ${range.until ? tx`and recorded_at <= ${range.until}` : tx``}
    ${range.stream !== undefined ? tx`and stream = ${range.stream}` : tx``}`
}
