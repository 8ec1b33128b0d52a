/**
 * Running one handler: decode its input, run it with a host-scoped context under its
 * time limit, encode its output. Failures become reply errors here (via src/errors.ts);
 * only database failures escape, so a command batch can roll back and retry.
 */
import { Cause, Effect, Exit, Option, Schema, SchemaAST } from "effect"
import type { Reply } from "../bus/envelope.ts"
import { badInput, internalError, replyError, toReplyError } from "../errors.ts"
import type { EventDef } from "../projects/event.ts"
import { eventCodec } from "../projects/event-codec.ts"
import { inDateRange, mayHoldDate } from "../projects/date-range.ts"
import type { HostReader } from "../projects/access.ts"
import type { Handler, HandlerContext, RequestMetadata } from "../projects/handler.ts"
import { undeclaredEmit } from "../projects/declared-events.ts"
import { handlerTimeoutMs, type LoadedProject } from "../projects/loader.ts"
import type { DatabaseError } from "../store/database.ts"
import type { PendingEvent } from "../store/event-log.ts"

export interface HandlerRequest {
  readonly requestId: string
  readonly handler: Handler
  readonly input: unknown
  readonly meta: RequestMetadata
  /** Epoch ms after which nobody waits for the reply any more. */
  readonly deadline: number
}

export interface HandlerOutcome {
  readonly reply: Reply
  readonly events: ReadonlyArray<PendingEvent>
}

/** Decodes raw input with the handler's schema; excess keys are rejected, not dropped. */
export const decodeInput = (handler: Handler, input: unknown): Exit.Exit<unknown, Schema.SchemaError> =>
  // no input at all is {}; an explicit null is input, and no Struct takes it
  codecsOf(handler).decode(input === undefined ? {} : input, { errors: "all", onExcessProperty: "error" })

interface HandlerCodecs {
  readonly decode: (
    input: unknown,
    options?: SchemaAST.ParseOptions,
  ) => Exit.Exit<unknown, Schema.SchemaError>
  readonly encode: (output: unknown) => Exit.Exit<unknown, Schema.SchemaError>
}

/**
 * `Schema.Struct({})` is TypeScript's `{}`: it takes any value but null, arrays and strings
 * included, and never sees excess keys. As a handler's input it means "no input", so it is
 * decoded as an object with no keys (an excess key is reported at its path, as for any Struct).
 */
const NO_INPUT = Schema.Struct({ _: Schema.optionalKey(Schema.Never) })
const isNoInput = (ast: SchemaAST.AST): boolean =>
  SchemaAST.isObjects(ast) && ast.propertySignatures.length === 0 && ast.indexSignatures.length === 0 &&
  ast.checks === undefined && ast.encoding === undefined

/**
 * Parsers built once per handler, not per request (they are pure functions of the Schemas). Input
 * and output are JSON on the wire, so both go through the Schemas' canonical JSON codecs
 * (`Schema.toCodecJson`, as event data does): a `Schema.Date` is an ISO string, a NaN "NaN". An
 * input that may hold a Date is also checked for Dates Postgres cannot store (date-range.ts).
 */
const codecs = new WeakMap<Handler, HandlerCodecs>()
const codecsOf = (handler: Handler): HandlerCodecs => {
  let found = codecs.get(handler)
  if (!found) {
    const input = isNoInput(handler.input.ast)
      ? NO_INPUT
      : mayHoldDate(SchemaAST.toType(handler.input.ast))
      ? Schema.toCodecJson(handler.input).check(inDateRange)
      : Schema.toCodecJson(handler.input)
    found = {
      decode: Schema.decodeUnknownExit(input as unknown as Schema.Codec<unknown, unknown>),
      encode: Schema.encodeUnknownExit(
        Schema.toCodecJson(handler.output) as unknown as Schema.Codec<unknown, unknown>,
      ),
    }
    codecs.set(handler, found)
  }
  return found
}

/** The handler returned what its output Schema does not take: a bug in the handler, told as such. */
class OutputMismatch {
  readonly _tag = "OutputMismatch"
  constructor(readonly error: Schema.SchemaError) {}
}

/**
 * Why a handler ran out of time. A host's commands run one after another: one that waited long
 * behind a slow one had little of its limit left, and is told so rather than blamed for it.
 */
const timedOut = (name: string, limitMs: number, queuedMs: number): string =>
  queuedMs >= QUEUED_NOTABLE_MS
    ? `${name} ran out of its ${limitMs} ms time limit: ${queuedMs} ms of it went waiting behind the host's earlier requests`
    : `${name} exceeded its time limit`

/** A wait in the host's queue worth naming when a handler then runs out of time. */
const QUEUED_NOTABLE_MS = 100

export const inputError = (error: Schema.SchemaError): Reply => ({ ok: false, error: badInput(error) })

const isDatabaseError = (u: unknown): u is DatabaseError =>
  typeof u === "object" && u !== null && (u as { _tag?: string })._tag === "DatabaseError"

/**
 * Runs the handler with `reader` as its `ctx.db` (a command batch passes its writer's, which
 * sends queued writes before reading; queries read on read lanes). Emitted events are
 * returned, not written: the caller appends them with the batch.
 */
export const runHandler = (
  project: LoadedProject,
  host: string,
  reader: HostReader,
  request: HandlerRequest,
): Effect.Effect<HandlerOutcome, DatabaseError> => {
  const events: Array<PendingEvent> = []
  // what the log keeps of the request (DESIGN §3): never its session, a bearer credential that
  // an append-only, hash-chained log and every export of it could never drop again
  const { correlationId, causationId, idempotencyKey } = request.meta
  const eventMeta = {
    requestId: request.requestId,
    handler: request.handler.name,
    ...(correlationId === undefined ? {} : { correlationId }),
    ...(causationId === undefined ? {} : { causationId }),
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
  }
  /**
   * An emit the run may not make (a query's, an undeclared event's) dies, and the run fails with it
   * even if the handler caught that defect: its events are never kept, so a 200 would be a lie.
   */
  let misuse: Error | undefined
  const misused = (message: string) => Effect.die(misuse ??= new Error(message))
  const ctx: HandlerContext = {
    host,
    project: project.name,
    requestId: request.requestId,
    meta: request.meta,
    db: reader,
    projectKey: project.projectKey,
    emit: <S extends Schema.Top>(event: EventDef<S>, data: S["Type"]) =>
      // a query's context has no emit by its type; one that reaches it anyway (a cast, plain JS)
      // fails loudly: a query's events would never be appended
      request.handler.kind === "query"
        ? misused(`query ${request.handler.name} emitted ${event.type}: only a command may emit events`)
        : Effect.suspend(() => {
          const undeclared = undeclaredEmit(project.events, request.handler.name, event.type)
          if (undeclared) return misused(undeclared)
          events.push({
            stream: event.stream(data),
            type: event.type,
            data: eventCodec(event).encode(data),
            meta: eventMeta,
            startsStream: event.startsStream,
          })
          return Effect.void
        }),
  }
  const startedAt = Date.now()
  const timeoutMs = Math.max(
    0,
    Math.min(request.deadline - startedAt, request.handler.timeoutMs ?? Infinity),
  )
  const limitMs = handlerTimeoutMs(project, request.handler)
  const { encode } = codecsOf(request.handler)
  return request.handler.handle(request.input, ctx).pipe(
    // an Exit is an Effect: no fiber work for the encode (nor for the misuse check)
    Effect.flatMap((value) =>
      misuse ? Exit.die(misuse) : Exit.mapError(encode(value), (error) => new OutputMismatch(error))
    ),
    Effect.timeoutOption(timeoutMs),
    Effect.exit,
    Effect.flatMap((exit): Effect.Effect<HandlerOutcome, DatabaseError> => {
      if (Exit.isSuccess(exit)) {
        if (Option.isNone(exit.value)) {
          return Effect.succeed({
            reply: {
              ok: false,
              error: replyError("timeout", timedOut(request.handler.name, limitMs, limitMs - timeoutMs)),
            },
            events: [],
          })
        }
        return Effect.succeed({ reply: { ok: true, output: exit.value.value }, events })
      }
      const failure = exit.cause.reasons.find(Cause.isFailReason)
      if (failure && isDatabaseError(failure.error)) return Effect.fail(failure.error)
      if (failure?.error instanceof OutputMismatch) {
        const message = `${request.handler.name}'s output does not match its output Schema`
        return Effect.logError(message, failure.error.error.message).pipe(
          Effect.as({
            reply: { ok: false, error: { ...internalError(request.requestId), message } },
            events: [],
          }),
        )
      }
      const error = toReplyError(exit.cause, request.requestId)
      if (error.code === "internal") {
        return Effect.logError("handler failed", Cause.pretty(exit.cause)).pipe(
          Effect.as({ reply: { ok: false, error } as Reply, events: [] }),
        )
      }
      return Effect.succeed({ reply: { ok: false, error }, events: [] })
    }),
    Effect.annotateLogs({ requestId: request.requestId, handler: request.handler.name }),
  )
}
