/**
 * Projections map events to read-table writes. The same projection code runs on the live
 * path (in the append transaction) and in audit rebuilds (into a scratch schema).
 */
import { Effect, type Schema } from "effect"
import type { DatabaseError } from "../store/database.ts"
import type { ProjectionWriter, SystemProjectionWriter } from "./access.ts"
import type { EventDef, RecordedEvent } from "./event.ts"
import { eventCodec } from "./event-codec.ts"

export interface Projection {
  readonly _tag: "Projection"
  readonly eventType: string
  readonly apply: (event: RecordedEvent, db: SystemProjectionWriter) => Effect.Effect<void, DatabaseError>
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
): Projection => defineSystemProjection(event, apply)

/** As `defineProjection`, for Hamlet's own events: the writer can purge (not in mod.ts). */
export const defineSystemProjection = <S extends Schema.Top>(
  event: EventDef<S>,
  apply: (event: RecordedEvent<S["Type"]>, db: SystemProjectionWriter) => Effect.Effect<void, DatabaseError>,
): Projection => ({
  _tag: "Projection",
  eventType: event.type,
  // the data arrives as stored (JSON); the projection is written against the Schema's Type
  apply: (recorded, db) =>
    Effect.suspend(() => apply({ ...recorded, data: decodeData(event, recorded) }, db)),
})

/** A logged event its project's Schema no longer decodes: for an audit, a finding, not a usage error. */
export class EventDataMismatch extends Error {
  readonly _tag = "EventDataMismatch"
}

const decodeData = (event: EventDef, recorded: RecordedEvent): unknown => {
  try {
    return eventCodec(event).decode(recorded.data)
  } catch (error) {
    throw new EventDataMismatch(
      `event ${recorded.type} at seq ${recorded.seq} of ${recorded.host} does not match its Schema: ${
        (error as Error).message
      }`,
    )
  }
}

/**
 * Runs every projection of each event, in log order: the one loop shared by the live path,
 * the cleanup jobs and audit replays.
 */
export const applyProjections = (
  projections: ReadonlyMap<string, ReadonlyArray<Projection>>,
  events: Iterable<RecordedEvent>,
  db: SystemProjectionWriter,
): Effect.Effect<void, DatabaseError> =>
  Effect.gen(function* () {
    for (const event of events) {
      for (const projection of projections.get(event.type) ?? []) yield* projection.apply(event, db)
    }
  })
