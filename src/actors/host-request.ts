/**
 * A request's envelope as a host actor decodes it: UTF-8 JSON, values Postgres can store (the one
 * check of a request's values: HTTP input reaches it here too; a -0 is made 0), then the envelope's
 * schema. A request that fails gets the bad_request that says why; one over `maxRequestBytes` is
 * not read.
 */
import { Cause, Exit, Schema } from "effect"
import { decodeText, type ReplyError, RequestEnvelope } from "../bus/envelope.ts"
import { checkWireValue } from "../bus/wire-values.ts"
import { badInput, replyError } from "../errors.ts"
import type { LoadedProject } from "../projects/loader.ts"

/** Room in a request envelope beside its input: id, meta (correlation, causation, key, session). */
const ENVELOPE_ROOM_BYTES = 8 * 1024

/**
 * The most bytes a request to `project` may have: the project's body limit holds for callers on
 * NATS as over HTTP (where it is checked before the envelope is made), with room for id and meta.
 */
export const maxRequestBytes = (project: LoadedProject): number =>
  project.limits.maxBodyBytes + ENVELOPE_ROOM_BYTES

const decodeEnvelope = Schema.decodeUnknownExit(RequestEnvelope)

export type DecodedRequest =
  | { readonly ok: true; readonly envelope: RequestEnvelope }
  | { readonly ok: false; readonly error: ReplyError }

export const decodeRequest = (data: Uint8Array): DecodedRequest => {
  let json: unknown
  try {
    json = JSON.parse(decodeText(data))
  } catch {
    return { ok: false, error: replyError("bad_request", "the request envelope is not valid UTF-8 JSON") }
  }
  // text Postgres cannot store (a NUL, a lone surrogate), or nesting too deep to encode; the
  // envelope is a wrapper, so its input nests from 0 and an issue in it is the input's, with the
  // input's path. Each -0 becomes 0 on the way: the handler sees what the log will keep (the
  // idempotency digest and coalesce key, JSON of the input, read -0 as 0 already)
  const issue = checkWireValue(json, -1)
  if (issue) {
    const inInput = issue.path === "input" || issue.path.startsWith("input.")
    return {
      ok: false,
      error: inInput
        ? replyError("bad_request", "the input cannot be stored", [{ ...issue, path: issue.path.slice(6) }])
        : replyError("bad_request", "the request envelope cannot be stored", [issue]),
    }
  }
  const envelope = decodeEnvelope(json, { errors: "all" })
  if (Exit.isSuccess(envelope)) return { ok: true, envelope: envelope.value }
  const error = Cause.findErrorOption(envelope.cause)
  return {
    ok: false,
    error: error._tag === "Some"
      ? badInput(error.value, "the request envelope")
      : replyError("bad_request", "malformed envelope"),
  }
}
