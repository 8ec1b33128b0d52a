/**
 * How a host actor answers one request: once (a later answer, a stopping node's say, is
 * dropped), on the request's reply subject, a success as bytes the ingress passes through
 * without re-encoding. A request published without a reply subject has nobody to hear an
 * error: that error is kept as a dead letter instead (of a request over the size limit, only its
 * beginning: it can never run, and a publisher's flood of them must not fill the table).
 */
import { Effect, type Fiber } from "effect"
import type { Bus, BusMessage } from "../bus/bus.ts"
import {
  encodeJson,
  encodeSuccess,
  OK_REPLY_HEADER,
  type Reply,
  type ReplyError,
  REQUEST_ID_HEADER,
  REQUEST_ID_PATTERN,
} from "../bus/envelope.ts"
import { replyError } from "../errors.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { type DeadLetter, withoutSession } from "../store/dead-letters.ts"
import type { DeadLetters } from "./dead-letters.ts"
import { maxRequestBytes } from "./host-request.ts"

/** Bytes of the bus's payload limit kept for a reply's headers. */
const REPLY_HEADER_ROOM = 1024

/** A dead letter keeps even bytes that are not UTF-8 (as U+FFFD). */
const lenientText = new TextDecoder()
const utf8 = new TextEncoder()
/** Bytes a dead letter keeps of a request too large to run: enough to tell what and whose it was. */
const TOO_LARGE_KEPT_BYTES = 1024

/** Encoded once per reply object: requests coalesced onto one run share its bytes. */
const successBytes = new WeakMap<Reply, Uint8Array>()
const encodedSuccess = (reply: Reply & { ok: true }): Uint8Array => {
  let bytes = successBytes.get(reply)
  if (!bytes) {
    bytes = encodeSuccess(reply.output)
    successBytes.set(reply, bytes)
  }
  return bytes
}

/** What every answer of one host actor shares. */
export interface ReplyContext {
  readonly project: LoadedProject
  readonly host: string
  readonly bus: Bus["Service"]
  readonly deadLetters: DeadLetters["Service"]
  readonly runFork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
}

/** One request's answer: `requestId` is the caller's x-request-id, else the envelope's once decoded. */
export interface Answer {
  readonly respond: (reply: Reply) => void
  requestId: string | undefined
}

/**
 * The answer to `message`, addressed to `handlerName` (as its subject says, served or not), a
 * `kind` of handler when the project has one by that name.
 */
export const answerTo = (
  context: ReplyContext,
  message: BusMessage,
  handlerName: string | undefined,
  kind: "query" | "command" | undefined,
): Answer => {
  const { bus, deadLetters, runFork } = context
  // x-request-id is echoed to callers that sent it (the ingress sends the id in the envelope); one
  // that is not a request id (too long, odd characters) is not taken: the envelope's id counts
  const header = message.headers[REQUEST_ID_HEADER]
  const echoedId = header !== undefined && REQUEST_ID_PATTERN.test(header) ? header : undefined
  let isAnswered = false
  const answer: Answer = {
    requestId: echoedId,
    respond: (reply) => {
      if (isAnswered) return
      isAnswered = true
      if (message.reply === undefined) {
        if (!reply.ok) {
          deadLetters.record(deadLetterOf(context, message, handlerName, reply.error, answer.requestId))
        }
        return
      }
      const headers: Record<string, string> = echoedId ? { [REQUEST_ID_HEADER]: echoedId } : {}
      // a reply that cannot be sent (bus closed) is lost to the caller, who times out; it must
      // not throw into the batch that committed it
      try {
        const bytes = reply.ok ? encodedSuccess(reply) : encodeJson(reply)
        // NATS counts the headers too (hamlet-reply, an echoed x-request-id): leave room for them
        if (bytes.length + REPLY_HEADER_ROOM > bus.maxPayload) {
          // the bus would drop it and the caller wait out its timeout: say so at once instead
          runFork(
            Effect.logError("reply too large for the bus", {
              requestId: answer.requestId,
              bytes: bytes.length,
            }),
          )
          const applied = kind === "command" && reply.ok ? "; the command's writes were committed" : ""
          const message_ = `the reply is ${bytes.length} bytes, more than the bus carries (${bus.maxPayload})`
          const tooLarge: Reply = {
            ok: false,
            error: { ...replyError("internal", message_ + applied), requestId: answer.requestId },
          }
          return message.respond(encodeJson(tooLarge), headers)
        }
        if (reply.ok) headers[OK_REPLY_HEADER] = "ok"
        message.respond(bytes, headers)
      } catch (error) {
        runFork(Effect.logWarning("reply not sent", { requestId: answer.requestId, error: String(error) }))
      }
    },
  }

  return answer
}

/**
 * The letter for a failed request: the request whole (without its session) when it is within the
 * size the actor takes, else its first bytes and its size — the same bound the actor refused it by,
 * so a letter holds at most a request that could run.
 */
const deadLetterOf = (
  { project, host }: ReplyContext,
  message: BusMessage,
  handlerName: string | undefined,
  error: ReplyError,
  requestId: string | undefined,
): DeadLetter => {
  const bound = maxRequestBytes(project)
  const letterText = (data: Uint8Array) => withoutSession(lenientText.decode(data))
  let whole = message.data.length > bound ? undefined : letterText(message.data)
  // re-encoded without its session (numbers written out, NULs replaced) a request can outgrow the
  // bound: it is then kept as one too large to run would be
  if (whole !== undefined && whole.length > bound / 3 && utf8.encode(whole).length > bound) whole = undefined
  const isTooLarge = whole === undefined
  return {
    host,
    project: project.name,
    subject: message.subject,
    handler: handlerName ?? "",
    requestId,
    // a beginning cut from JSON is not JSON: nothing is kept from where a session key could start
    payload: whole ?? letterText(message.data.subarray(0, TOO_LARGE_KEPT_BYTES)),
    ...(isTooLarge ? { requestBytes: message.data.length } : {}),
    error: { code: error.code, message: error.message, ...(error.issues ? { issues: error.issues } : {}) },
  }
}
