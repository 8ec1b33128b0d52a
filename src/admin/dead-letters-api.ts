/**
 * Admin routes for a host's dead letters (store/dead-letters.ts), for the key of the project
 * that owns the host or one of the host's admin keys:
 *   GET    /admin/hosts/<host>/dead-letters?after=<id>&limit=<n>   oldest first, `limit` ≤ 1000;
 *          &code=<error code>&handler=<name> list only those (say, the `overloaded` ones worth a retry)
 *   POST   /admin/hosts/<host>/dead-letters/<id>/retry             send it again and wait for the answer
 *   DELETE /admin/hosts/<host>/dead-letters/<id>                   discard it
 * A retry is a request to the host's handler as it is now (this time with a reply subject, so
 * its answer comes back here): answered ok, the letter is removed; otherwise it stays, with
 * the new error and one more attempt. Either way the answer is 200 with the handler's reply. A
 * letter keeping only the beginning of a request too large to run is not sent: 409.
 */
import { Effect, Schema } from "effect"
import type { Bus } from "../bus/bus.ts"
import { decodeText, ErrorCode, type Reply } from "../bus/envelope.ts"
import { requestSubject } from "../bus/subjects.ts"
import { busFailure, replyError } from "../errors.ts"
import { errorResponse, jsonResponse, methodNotAllowed } from "../ingress/responses.ts"
import { replyTimeoutMs } from "../projects/loader.ts"
import type { DatabaseError } from "../store/database.ts"
import {
  type DeadLetterPage,
  getDeadLetter,
  listDeadLetters,
  markRetryFailed,
  removeDeadLetter,
  type StoredDeadLetter,
} from "../store/dead-letters.ts"
import { authorizeHost, type HostAccessDeps } from "./authorize.ts"
import { badHost, hostSegment } from "./hosts-api.ts"
import { PASCAL_NAME } from "../projects/names.ts"

export interface DeadLettersApiDeps extends HostAccessDeps {
  readonly bus: Bus["Service"]
  readonly run: <A>(effect: Effect.Effect<A, DatabaseError>) => Promise<A>
  readonly log: (message: string, fields: Record<string, unknown>) => void
}

const DEAD_LETTERS = /^\/admin\/hosts\/([^/]+)\/dead-letters\/?$/
const DEAD_LETTER = /^\/admin\/hosts\/([^/]+)\/dead-letters\/([0-9]{1,18})\/?$/
const RETRY = /^\/admin\/hosts\/([^/]+)\/dead-letters\/([0-9]{1,18})\/retry\/?$/

const payloadBytes = new TextEncoder()
const DEFAULT_PAGE = 100
const MAX_PAGE = 1000

/** The page a query string asks for, or the message saying what is wrong with it. */
const pageOf = (url: URL): DeadLetterPage | string => {
  const after = url.searchParams.get("after") ?? "0"
  const limit = url.searchParams.get("limit") ?? String(DEFAULT_PAGE)
  const code = url.searchParams.get("code") ?? undefined
  const handler = url.searchParams.get("handler") ?? undefined
  if (!/^[0-9]{1,18}$/.test(after)) return `after must be a dead letter id, got ${JSON.stringify(after)}`
  if (!/^[0-9]{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_PAGE) {
    return `limit must be 1 to ${MAX_PAGE}, got ${JSON.stringify(limit)}`
  }
  if (code !== undefined && !Schema.is(ErrorCode)(code)) {
    return `code must be one of ${ErrorCode.literals.join(", ")}, got ${JSON.stringify(code)}`
  }
  if (handler !== undefined && !PASCAL_NAME.test(handler)) {
    return `handler must be a handler's name, got ${JSON.stringify(handler)}`
  }
  return { afterId: BigInt(after), limit: Number(limit), code, handler }
}

const noSuchLetter = (host: string, id: bigint) =>
  errorResponse(replyError("not_found", `host ${host} has no dead letter ${id}`))

/** The route's response, or undefined when the path is not a dead-letter route. */
export const deadLettersApi = async (
  deps: DeadLettersApiDeps,
  request: Request,
  url: URL,
): Promise<Response | undefined> => {
  const list = DEAD_LETTERS.exec(url.pathname)
  const one = DEAD_LETTER.exec(url.pathname)
  const retry = RETRY.exec(url.pathname)
  const match = list ?? one ?? retry
  if (!match) return undefined
  const allowed = list ? "GET, HEAD" : one ? "DELETE" : "POST"
  if (!allowed.split(", ").includes(request.method)) return methodNotAllowed(request.method, allowed)
  const host = hostSegment(match[1])
  if (!host) return badHost(match[1])
  const owner = await authorizeHost(deps, request, host)
  if (owner instanceof Response) return owner

  if (list) {
    const page = pageOf(url)
    if (typeof page === "string") return errorResponse(replyError("bad_request", page))
    const letters = await deps.run(listDeadLetters(deps.sql, host, page))
    const next = letters.length === page.limit ? letters[letters.length - 1].id : null
    return jsonResponse(200, { deadLetters: letters, next })
  }
  const id = BigInt(match[2])
  if (one) {
    const removed = await deps.run(removeDeadLetter(deps.sql, host, id))
    if (!removed) return noSuchLetter(host, id)
    deps.log("dead letter discarded", { host, id: String(id) })
    return new Response(null, { status: 204 })
  }
  const letter = await deps.run(getDeadLetter(deps.sql, host, id))
  if (!letter) return noSuchLetter(host, id)
  if (!letter.handler) {
    return errorResponse(replyError("conflict", `dead letter ${id} names no handler to send it to`))
  }
  if (letter.requestBytes !== null) {
    return errorResponse(replyError(
      "conflict",
      `dead letter ${id} keeps only the beginning of its ${letter.requestBytes}-byte request, refused as too large: it cannot be sent again (discard it)`,
    ))
  }
  const handler = owner.handlers.get(letter.handler)
  const reply = await sendAgain(deps, owner.name, host, letter, {
    timeoutMs: replyTimeoutMs(owner, handler),
    kind: handler?.kind ?? "command",
  })
  const removed = reply.ok && await deps.run(removeDeadLetter(deps.sql, host, id))
  if (!reply.ok) await deps.run(markRetryFailed(deps.sql, host, id, reply.error))
  deps.log("dead letter sent again", { host, id: String(id), ok: reply.ok })
  return jsonResponse(200, { id: letter.id, removed, reply })
}

/**
 * The request to send again: an envelope gets an idempotency key of the letter's own unless it
 * has one, so two retries at once (a double click, two operators) or a retry after one that timed
 * out but committed run the command once. Text that is not an envelope goes as stored (it fails
 * again, with the same error).
 */
const retryPayload = (letter: StoredDeadLetter): { text: string; idempotencyKey?: string } => {
  let envelope: unknown
  try {
    envelope = JSON.parse(letter.payload)
  } catch {
    return { text: letter.payload }
  }
  if (!envelope || typeof envelope !== "object" || Array.isArray(envelope)) return { text: letter.payload }
  const { meta } = envelope as { meta?: unknown }
  const current = meta && typeof meta === "object" && !Array.isArray(meta)
    ? meta as Record<string, unknown>
    : {}
  if (current.idempotencyKey !== undefined) {
    const key = current.idempotencyKey
    return { text: letter.payload, idempotencyKey: typeof key === "string" ? key : undefined }
  }
  const idempotencyKey = `hamlet-dead-letter-${letter.id}`
  return { text: JSON.stringify({ ...envelope, meta: { ...current, idempotencyKey } }), idempotencyKey }
}

/** Sends a letter's request to its host's handler and waits for the reply. */
const sendAgain = (
  deps: DeadLettersApiDeps,
  project: string,
  host: string,
  letter: StoredDeadLetter,
  { timeoutMs, kind }: { readonly timeoutMs: number; readonly kind: "command" | "query" },
): Promise<Reply> => {
  const payload = retryPayload(letter)
  return Effect.runPromise(
    deps.bus.request(requestSubject(project, host, letter.handler), payloadBytes.encode(payload.text), {
      timeoutMs,
    }).pipe(
      Effect.map((answer) => JSON.parse(decodeText(answer.data)) as Reply),
      // a command that went out and timed out may have run: the letter's reply says so
      Effect.catch((error) =>
        Effect.succeed<Reply>({
          ok: false,
          error: busFailure(error, {
            kind,
            requestId: letter.requestId ?? `dead-letter-${letter.id}`,
            idempotencyKey: payload.idempotencyKey,
          }),
        })
      ),
    ),
  )
}
