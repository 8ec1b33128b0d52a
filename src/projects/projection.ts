/**
 * Projections map events to read-table writes. The same projection code runs on the live
 * path (in the append transaction) and in audit rebuilds (into a scratch schema).
 */
import type { Effect, Schema } from "effect"
import type { DatabaseError } from "../store/database.ts"
import type { ProjectionWriter } from "./access.ts"
import type { EventDef, RecordedEvent } from "./event.ts"

export interface Projection {
  readonly _tag: "Projection"
  readonly eventType: string
  readonly apply: (event: RecordedEvent, db: ProjectionWriter) => Effect.Effect<void, DatabaseError>
}

/**
 * Declares how one event type changes the read tables.
 *
 * @example
 * ```ts
 * defineProjection(PostCreated, (e, db) => db.insert(Post, { id: e.data.id, title: e.data.title }))
 * ```
 */
export const defineProjection = <S extends Schema.Top>(
  event: EventDef<S>,
  apply: (event: RecordedEvent<S["Type"]>, db: ProjectionWriter) => Effect.Effect<void, DatabaseError>,
): Projection => ({
  _tag: "Projection",
  eventType: event.type,
  apply: apply as Projection["apply"],
})
