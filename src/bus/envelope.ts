/**
 * Request and reply envelopes carried over the bus (DESIGN.md §2). These Schemas are the
 * single definition of the wire format, used by the ingress, host actors and the README.
 */
import { Schema } from "effect"

export const ErrorCode = Schema.Literals([
  "bad_request",
  "not_found",
  "conflict",
  "unauthorized",
  "overloaded",
  "timeout",
  "internal",
])
export type ErrorCode = typeof ErrorCode.Type

export const Issue = Schema.Struct({ path: Schema.String, message: Schema.String })
export type Issue = typeof Issue.Type

export const RequestMeta = Schema.Struct({
  correlationId: Schema.optional(Schema.String),
  causationId: Schema.optional(Schema.String),
  idempotencyKey: Schema.optional(Schema.String),
  session: Schema.optional(Schema.String),
})

export const RequestEnvelope = Schema.Struct({
  id: Schema.String,
  input: Schema.optional(Schema.Unknown),
  meta: Schema.optional(RequestMeta),
})
export type RequestEnvelope = typeof RequestEnvelope.Type

export const ReplyError = Schema.Struct({
  code: ErrorCode,
  message: Schema.String,
  issues: Schema.optional(Schema.Array(Issue)),
  requestId: Schema.optional(Schema.String),
})
export type ReplyError = typeof ReplyError.Type

export const Reply = Schema.Union([
  Schema.Struct({ ok: Schema.Literal(true), output: Schema.Unknown }),
  Schema.Struct({ ok: Schema.Literal(false), error: ReplyError }),
])
export type Reply = typeof Reply.Type

/** Header carrying the request id across the hop (also the envelope's `id`). */
export const REQUEST_ID_HEADER = "x-request-id"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))
export const decodeText = (data: Uint8Array): string => decoder.decode(data)
