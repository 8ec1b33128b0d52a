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

/**
 * What a request id may be, from HTTP (`x-request-id`) or in an envelope: it is logged, echoed,
 * and kept in every event's meta (so in the hash chain and its exports) — short, plain text.
 */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

/** An id kept in events' meta (correlation, causation): 1 to 256 characters. */
const MetaId = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256))

export const RequestMeta = Schema.Struct({
  correlationId: Schema.optional(MetaId),
  causationId: Schema.optional(MetaId),
  /** Stored with the reply, in a key index: 1 to 256 characters. */
  idempotencyKey: Schema.optional(MetaId),
  session: Schema.optional(Schema.String.check(Schema.isMaxLength(4096))),
})

export const RequestEnvelope = Schema.Struct({
  id: Schema.String.check(Schema.isPattern(REQUEST_ID_PATTERN)),
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
/** Fatal: bytes that are not UTF-8 are refused (a caller's bad request), never replaced by U+FFFD. */
const decoder = new TextDecoder("utf-8", { fatal: true })

export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))

/**
 * A request envelope's bytes from its input already encoded as JSON, so that a caller that needs
 * that JSON too (the ingress keys request collapsing on it) encodes the input once.
 */
export const encodeRequest = (id: string, inputJson: string, meta?: RequestEnvelope["meta"]): Uint8Array =>
  encoder.encode(
    `{"id":${JSON.stringify(id)},"input":${inputJson}${
      meta === undefined ? "" : `,"meta":${JSON.stringify(meta)}`
    }}`,
  )
export const decodeText = (data: Uint8Array): string => decoder.decode(data)

/**
 * Reply header set by Hamlet's host actors on a success reply they encoded as exactly
 * `{"ok":true,"output":<output>}`: the ingress may then pass the output's bytes through to
 * HTTP without parsing and re-encoding them.
 */
export const OK_REPLY_HEADER = "hamlet-reply"

const OK_PREFIX = '{"ok":true,"output":'

/** Encodes a success reply so that `successOutputBytes` can slice the output back out. */
export const encodeSuccess = (output: unknown): Uint8Array =>
  encoder.encode(`${OK_PREFIX}${JSON.stringify(output) ?? "null"}}`)

/**
 * The output's JSON bytes of a reply made by `encodeSuccess`, as a plain Uint8Array view of
 * `data` (no copy): a Response copies its body once, at construction. A slice would copy twice,
 * each time through the subclass constructor of the NATS client's Buffer (V8's species path): in
 * a profile of GetFeed at 32 clients that constructor was 12% of the ingress thread. Text instead
 * of bytes was tried: the ingress thread used less CPU (40–42% of a core against 44–46%), but
 * seven alternating runs gave 3,919 rps (bytes) and 3,913 (text).
 */
export const successOutputBytes = (data: Uint8Array): Uint8Array<ArrayBuffer> =>
  new Uint8Array(
    data.buffer as ArrayBuffer,
    data.byteOffset + OK_PREFIX.length,
    data.length - OK_PREFIX.length - 1,
  )
