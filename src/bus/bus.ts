/**
 * The Bus service: NATS semantics (subjects with `*`/`>`, queue groups, request/reply with
 * timeout and no-responders, headers, a payload limit) behind one interface, so the
 * in-process adapter (memory.ts) and the NATS adapter (nats.ts) are interchangeable.
 */
import { Context, Effect, Schema, Scope } from "effect"

/** Headers travel with a message; keys are case-sensitive as in NATS. */
export type BusHeaders = Readonly<Record<string, string>>

/** A message delivered to a subscriber. `respond` is a no-op when there is no reply subject. */
export interface BusMessage {
  readonly subject: string
  readonly data: Uint8Array
  readonly headers: BusHeaders
  readonly reply: string | undefined
  readonly respond: (data: Uint8Array, headers?: BusHeaders) => void
}

/** The reply to a request. */
export interface BusReply {
  readonly data: Uint8Array
  readonly headers: BusHeaders
}

export class BusTimeout extends Schema.TaggedError<BusTimeout>()("BusTimeout", {
  subject: Schema.String,
  timeoutMs: Schema.Number,
}) {}

export class BusNoResponders extends Schema.TaggedError<BusNoResponders>()("BusNoResponders", {
  subject: Schema.String,
}) {}

export class BusPayloadTooLarge extends Schema.TaggedError<BusPayloadTooLarge>()("BusPayloadTooLarge", {
  subject: Schema.String,
  size: Schema.Number,
  maxPayload: Schema.Number,
}) {}

/**
 * The connection is closed or currently disconnected (NATS outage). `sent`: a request had already
 * gone out when the connection failed, so its handler may have run (and a command been applied).
 */
export class BusUnavailable extends Schema.TaggedError<BusUnavailable>()("BusUnavailable", {
  message: Schema.String,
  sent: Schema.optional(Schema.Boolean),
}) {}

export type BusError = BusTimeout | BusNoResponders | BusPayloadTooLarge | BusUnavailable

export interface SubscribeOptions {
  /** Queue group: each message goes to exactly one member of the group. */
  readonly queue?: string
}

export interface RequestOptions {
  readonly timeoutMs: number
  readonly headers?: BusHeaders
}

export class Bus extends Context.Service<Bus, {
  /** Publish a message; fire and forget. */
  readonly publish: (
    subject: string,
    data: Uint8Array,
    headers?: BusHeaders,
  ) => Effect.Effect<void, BusPayloadTooLarge | BusUnavailable>
  /**
   * Subscribe with a callback. The subscription lives as long as the enclosing Scope.
   * Callbacks run synchronously on delivery and must not throw; per publisher, messages
   * on one subscription arrive in publish order.
   */
  readonly subscribe: (
    subject: string,
    onMessage: (message: BusMessage) => void,
    options?: SubscribeOptions,
  ) => Effect.Effect<void, BusUnavailable, Scope.Scope>
  /** Request/reply: fails with BusNoResponders at once when nobody listens, BusTimeout after timeoutMs. */
  readonly request: (
    subject: string,
    data: Uint8Array,
    options: RequestOptions,
  ) => Effect.Effect<BusReply, BusError>
  /** Whether the bus is connected right now (readiness). */
  readonly isConnected: Effect.Effect<boolean>
  /**
   * How many times the connection came back after a loss: what was published meanwhile did not
   * reach this node's subscriptions (0 for ever on the in-process bus).
   */
  readonly reconnects: Effect.Effect<number>
  /** Largest payload accepted, in bytes. */
  readonly maxPayload: number
  /** Waits until everything published so far has been handed to the server (no-op in memory). */
  readonly flush: Effect.Effect<void, BusUnavailable>
}>()("hamlet/Bus") {}
