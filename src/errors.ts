/**
 * The one table from failures to reply codes and HTTP statuses. Handlers, actors and the
 * ingress all go through here, so a code means the same thing on NATS and over HTTP.
 */
import { Cause, Schema, SchemaIssue } from "effect"
import type { ErrorCode, Issue, ReplyError } from "./bus/envelope.ts"

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

/** Schema issues as `{path, message}` with dotted paths (`tags.0`). */
export const schemaIssues = (error: Schema.SchemaError): ReadonlyArray<Issue> =>
  formatter(error.issue).issues.map((i) => ({
    path: (i.path ?? []).map((p) => String(typeof p === "object" && p !== null ? p.key : p)).join("."),
    message: i.message,
  }))

export const badInput = (error: Schema.SchemaError, what = "input"): ReplyError =>
  replyError("bad_request", `${what} does not match the handler's schema`, schemaIssues(error))

/** What a caller learns of a bug or a store failure: nothing but the id to quote. */
export const internalError = (requestId: string): ReplyError => ({
  code: "internal",
  message: "internal error",
  requestId,
})

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
