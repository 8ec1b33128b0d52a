/**
 * Events Hamlet itself writes into a host's log (the `Hamlet` prefix is reserved): purges
 * by the fleet-wide cleanup actors. Their projection is built in, so an audit rebuild
 * replays a purge exactly as it happened live.
 */
import { Effect, Schema } from "effect"
import { defineSystemProjection, type Projection } from "../projects/projection.ts"
import type { EventDef } from "../projects/event.ts"
import type { Model } from "../projects/model.ts"

const RowsPurgedData = Schema.Struct({
  table: Schema.String,
  ids: Schema.Array(Schema.String),
  deletedBefore: Schema.String,
})

const SessionsExpiredData = Schema.Struct({
  ids: Schema.Array(Schema.String),
  expiredBefore: Schema.String,
})

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
