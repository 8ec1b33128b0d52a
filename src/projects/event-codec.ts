/**
 * An event's data as the log stores it: its Schema's canonical JSON codec (a `Schema.Date`
 * is an ISO string there), derived once per event type. Handlers' data is encoded with it
 * before it is hashed and appended; projections get it decoded again, on the live path and
 * in replays alike, so both see the Schema's Type (a Date, not a Date live and a string on rebuild).
 */
import { Schema } from "effect"
import type { EventDef } from "./event.ts"

export interface EventCodec {
  /** The handler's data as JSON; throws when it does not match the Schema. */
  readonly encode: (data: unknown) => unknown
  /** Stored JSON back to the Schema's Type; throws when it does not match. */
  readonly decode: (json: unknown) => unknown
}

const codecs = new WeakMap<Schema.Top, EventCodec>()

export const eventCodec = (event: Pick<EventDef, "schema">): EventCodec => {
  let codec = codecs.get(event.schema)
  if (!codec) {
    const json = Schema.toCodecJson(event.schema) as unknown as Schema.Codec<unknown, unknown>
    codec = { encode: Schema.encodeSync(json), decode: Schema.decodeUnknownSync(json) }
    codecs.set(event.schema, codec)
  }
  return codec
}
