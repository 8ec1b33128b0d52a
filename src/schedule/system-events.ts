/**
 * Events Hamlet itself writes into a host's log (the `Hamlet` prefix is reserved): purges
 * by the fleet-wide cleanup actors. Their projection is built in, so an audit rebuild
 * replays a purge exactly as it happened live.
 */
import { Effect, Schema } from "effect"
import { defineProjection, type Projection } from "../projects/projection.ts"
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

/** Replays a purge: removes the listed rows of the project's table (no-op for unknown tables). */
export const purgeProjection = (models: ReadonlyArray<Model>): Projection =>
  defineProjection(RowsPurged, (event, db) => {
    const model = models.find((m) => m.table === event.data.table)
    if (!model) return Effect.void
    return Effect.forEach(event.data.ids, (id) => db.remove(model, { id } as never), { discard: true })
  })
