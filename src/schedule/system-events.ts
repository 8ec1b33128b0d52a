/**
 * Events Hamlet itself writes into a host's log (the `Hamlet` prefix is reserved): purges
 * by the fleet-wide cleanup actors. Their projection is built in, so an audit rebuild
 * replays a purge exactly as it happened live.
 */
import { createHash } from "node:crypto"
import { Effect, Schema } from "effect"
import { defineSystemProjection, type Projection } from "../projects/projection.ts"
import type { EventDef } from "../projects/event.ts"
import type { Model } from "../projects/model.ts"

const RowsPurgedData = Schema.Struct({
  table: Schema.String,
  ids: Schema.Array(Schema.String),
  deletedBefore: Schema.String,
})

/**
 * A session's id may be its bearer token, and the log can never drop what it holds: an expiry
 * records how many sessions went and the sha256 (hex) of each id, sorted, so an auditor can
 * still tell whether a known session was among them. Logs written before list the raw `ids`
 * instead; nothing projects this event (hamlet_sessions is no read table), so a replay, a
 * rebuild and the chain's verify read both shapes as stored.
 */
const SessionsExpiredData = Schema.Struct({
  count: Schema.Number,
  idSha256: Schema.Array(Schema.String),
  expiredBefore: Schema.String,
})

/** What a HamletSessionsExpired event records of a session id: its sha256, in hex. */
export const sessionIdDigest = (id: string): string => createHash("sha256").update(id).digest("hex")

const systemEvent = <S extends Schema.Top>(
  type: string,
  schema: S,
  stream: (d: S["Type"]) => string,
): EventDef<S> => ({
  _tag: "EventDef",
  type,
  schema,
  stream,
  startsStream: false,
})

export const RowsPurged = systemEvent("HamletRowsPurged", RowsPurgedData, (d) => `hamlet-purge-${d.table}`)
export const SessionsExpired = systemEvent(
  "HamletSessionsExpired",
  SessionsExpiredData,
  () => "hamlet-sessions",
)

/**
 * Applies a purge, live and on replay: deletes the listed rows of the project's table that are
 * still soft-deleted before the event's `deletedBefore` — never a row created again since the
 * job listed it (purges logged before the job listed ids in its transaction did so outside it,
 * and a replay must treat them as they were applied live). No-op for an unknown table,
 * or one whose model no longer soft-deletes (it holds no soft-deleted rows).
 */
export const purgeProjection = (models: ReadonlyArray<Model>): Projection =>
  defineSystemProjection(RowsPurged, (event, db) => {
    const model = models.find((m) => m.table === event.data.table)
    if (!model?.options.softDelete) return Effect.void
    return db.purgeSoftDeleted(model, event.data.ids, new Date(event.data.deletedBefore))
  })
