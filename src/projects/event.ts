/**
 * Events: the facts a handler emits. Each event type has a Schema for its data and names
 * the stream (aggregate) it belongs to, which orders it by `version` within the host's log.
 */
import type { Schema } from "effect"
import { PASCAL_NAME } from "./names.ts"

export interface EventDef<S extends Schema.Top = Schema.Top> {
  readonly _tag: "EventDef"
  readonly type: string
  readonly schema: S
  /** Method syntax on purpose: keeps EventDef<S> assignable to EventDef (bivariant). */
  stream(data: S["Type"]): string
  /**
   * This event begins its stream (e.g. `ItemSubmitted`): it is version 1 by definition, so
   * no lookup is needed, and emitting it on an existing stream is a conflict.
   */
  readonly startsStream: boolean
}

export interface EventOptions {
  /** See {@link EventDef.startsStream}. */
  readonly startsStream?: boolean
}

/** An event as stored and replayed: what projections receive. */
export interface RecordedEvent<D = unknown> {
  readonly host: string
  readonly project: string
  readonly seq: number
  readonly stream: string
  readonly version: number
  readonly type: string
  readonly data: D
  readonly meta: Readonly<Record<string, unknown>>
  readonly recordedAt: Date
}

/**
 * Declares an event type.
 *
 * @example
 * ```ts
 * const PostCreated = defineEvent("PostCreated", Schema.Struct({ id: Schema.String }), (d) => `post-${d.id}`, {
 *   startsStream: true,
 * })
 * ```
 */
export const defineEvent = <S extends Schema.Top>(
  type: string,
  schema: S,
  stream: (data: S["Type"]) => string,
  options: EventOptions = {},
): EventDef<S> => {
  if (!PASCAL_NAME.test(type)) throw new Error(`event type "${type}" must be PascalCase`)
  if (type.startsWith("Hamlet")) throw new Error(`event type "${type}": the Hamlet prefix is reserved`)
  return { _tag: "EventDef", type, schema, stream, startsStream: options.startsStream ?? false }
}
