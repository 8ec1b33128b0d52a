/**
 * The one table from failures to reply codes and HTTP statuses. Handlers, actors and the
 * ingress all go through here, so a code means the same thing on NATS and over HTTP.
 */
import { Cause, Schema, SchemaIssue } from "effect"
import type { BusError } from "./bus/bus.ts"
import type { ErrorCode, Issue, ReplyError } from "./bus/envelope.ts"
import { COMMIT_UNKNOWN, type DatabaseError, isStoreUnavailable, UNIQUE_VIOLATION } from "./store/database.ts"
import type { RegisterHostError } from "./store/event-log.ts"

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  internal: 500,
  overloaded: 503,
  timeout: 504,
}

/** Handler error tags (src/projects/errors.ts) → reply codes. */
const HANDLER_ERROR_CODES: Readonly<Record<string, ErrorCode>> = {
  BadRequest: "bad_request",
  NotFound: "not_found",
  Conflict: "conflict",
  Unauthorized: "unauthorized",
}

export const replyError = (code: ErrorCode, message: string, issues?: ReadonlyArray<Issue>): ReplyError =>
  issues ? { code, message, issues } : { code, message }

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** Issues listed in one reply at most (an input with 23,000 stray keys made a 1.3 MB reply). */
const MAX_ISSUES = 50

/** Schema issues as `{path, message}` with dotted paths (`tags.0`); the first MAX_ISSUES, then a count. */
export const schemaIssues = (error: Schema.SchemaError): ReadonlyArray<Issue> => {
  const all = formatter(error.issue).issues
  const listed = all.slice(0, MAX_ISSUES).map((i) => ({
    path: (i.path ?? []).map((p) => String(typeof p === "object" && p !== null ? p.key : p)).join("."),
    message: i.message,
  }))
  return all.length > MAX_ISSUES
    ? [...listed, { path: "", message: `and ${all.length - MAX_ISSUES} more issues` }]
    : listed
}

/** A bad request naming its issues: the input against the handler's schema, or `what` against its own. */
export const badInput = (error: Schema.SchemaError, what?: string): ReplyError =>
  replyError(
    "bad_request",
    what === undefined ? "input does not match the handler's schema" : `${what} is malformed`,
    schemaIssues(error),
  )

/** A host refusing work it cannot take now (503 with Retry-After): its queue is full, or it is stopping. */
export const hostBusy = (host: string): ReplyError =>
  replyError("overloaded", `host ${host} is busy; retry shortly`)
export const hostStopping = (host: string): ReplyError =>
  replyError("overloaded", `host ${host} is shutting down; retry`)

/** A host whose log another project owns, as a caller is told (which project owns it stays unsaid). */
export const hostOfAnotherProject = (host: string): ReplyError =>
  replyError("conflict", `host ${host} belongs to another project`)

/** A host one of the project's hosts/ folders serves: the folder, not the admin API or a signed change, adds and removes it. */
export const hostFromFolder = (host: string): ReplyError =>
  replyError("conflict", `host ${host} comes from a folder; add or remove the folder instead`)

/**
 * A remove of a host the project has no live run-time row for in hamlet_hosts (never registered,
 * removed already, or another project's): the admin API's 404 and a signed change's `not_found`.
 */
export const noRunTimeHost = (project: string, host: string): ReplyError =>
  replyError("not_found", `project ${project} has no run-time host ${host}`)

/**
 * registerHost's failures a caller can act on, as replies: undefined for a store failure
 * (`DatabaseError`), which is not the caller's to mend.
 */
export const registrationError = (error: RegisterHostError): ReplyError | undefined => {
  switch (error._tag) {
    case "BadHostname":
      return replyError("bad_request", error.message)
    case "HostOwnedElsewhere":
      return hostOfAnotherProject(error.host)
    case "RegistrationLocked":
      return replyError("overloaded", error.message) // 503 with Retry-After: try again shortly
    case "DatabaseError":
      return undefined
  }
}

/** What a caller learns of a bug or a store failure: nothing but the id to quote. */
export const internalError = (requestId: string): ReplyError => ({
  code: "internal",
  message: "internal error",
  requestId,
})

/** Who met a store failure: a command (with its idempotency key, if it carried one) or a query. */
export interface StoreRequest {
  readonly kind: "command" | "query"
  readonly requestId: string
  readonly idempotencyKey?: string | undefined
}

/**
 * A unique violation of the log itself (a stream that already exists, a lost race retried out):
 * a 409 the caller can act on. One in a read table is a projection's bug, answered as internal.
 */
const isLogConflict = (error: DatabaseError): boolean =>
  error.code === UNIQUE_VIOLATION &&
  (error.constraint === undefined || error.constraint.startsWith("hamlet_"))

/**
 * A write whose outcome is unknown (its COMMIT, or its request, went out and the answer was lost):
 * it may have been applied. With an idempotency key a retry is safe, so it is a 503 (retry); without
 * one a 500: the caller must check before writing again. `what` says what failed.
 */
export const possiblyApplied = (what: string, request: StoreRequest): ReplyError =>
  request.idempotencyKey === undefined
    ? {
      code: "internal",
      message: `${what}: the write may have been applied; check before sending it again (send commands ` +
        "with an Idempotency-Key so that a retry is safe)",
      requestId: request.requestId,
    }
    : {
      code: "overloaded",
      message: `${what}: the write may have been applied; retrying with the same Idempotency-Key is safe`,
      requestId: request.requestId,
    }

/**
 * What a caller is told when the store failed its command or query, by what is true of its
 * write: nothing written while the store was unreachable or its connection lost → `overloaded`
 * (503 with Retry-After: the retry is the fix); a commit whose outcome is unknown → the write
 * may have been applied, `overloaded` when an idempotency key makes the retry safe, `internal`
 * otherwise (the caller must check before writing again). Anything else is a bug: `internal`.
 */
export const storeFailure = (error: DatabaseError, request: StoreRequest): ReplyError => {
  if (isStoreUnavailable(error)) {
    return replyError(
      "overloaded",
      request.kind === "command"
        ? "the store is unavailable; nothing was written, retry"
        : "the store is unavailable; retry",
    )
  }
  if (request.kind === "query") return internalError(request.requestId) // a read writes nothing
  if (error.code === COMMIT_UNKNOWN) return possiblyApplied("the store failed while committing", request)
  if (isLogConflict(error)) {
    return replyError(
      "conflict",
      "the write conflicts with the log (a concurrent write, or a stream that exists)",
    )
  }
  return internalError(request.requestId)
}

/** Maps a handler's failure (typed error, or defect) to a reply error; defects hide details. */
export const toReplyError = (cause: Cause.Cause<unknown>, requestId: string): ReplyError => {
  const failure = cause.reasons.find(Cause.isFailReason)
  if (failure) {
    const error = failure.error as { _tag?: string; message?: string }
    const code = error?._tag ? HANDLER_ERROR_CODES[error._tag] : undefined
    if (code) return replyError(code, error.message ?? code)
  }
  return internalError(requestId)
}

/**
 * What a caller is told when the bus could not carry a request to its host's actor or back. A
 * command that went out may have been applied (it timed out, or NATS failed before the answer):
 * the caller is told so, and that a retry is safe only with the same Idempotency-Key — an outage
 * with a key stays 503 (retry), one without is 500 (check before writing again), as `storeFailure`.
 */
export const busFailure = (error: BusError, request?: StoreRequest): ReplyError => {
  const isCommand = request?.kind === "command"
  switch (error._tag) {
    case "BusTimeout":
      return replyError(
        "timeout",
        isCommand
          ? possiblyApplied("the handler did not answer in time", request).message
          : "the handler did not answer in time",
      )
    case "BusPayloadTooLarge":
      return replyError("bad_request", "request too large for the bus")
    case "BusNoResponders":
      return replyError("overloaded", "no actor serves this host now")
    case "BusUnavailable":
      if (!isCommand || error.sent !== true) return replyError("overloaded", "the bus is unavailable")
      return possiblyApplied("the bus failed after the request was sent", request)
  }
}
