/**
 * Errors a handler may fail with. Each maps to one reply code (and HTTP status) in
 * src/errors.ts; anything else a handler throws is a defect and becomes `internal`.
 */
import { Schema } from "effect"

export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", { message: Schema.String }) {}
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { message: Schema.String }) {}
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", { message: Schema.String }) {}
export class Unauthorized
  extends Schema.TaggedError<Unauthorized>()("Unauthorized", { message: Schema.String }) {}

export type HandlerError = BadRequest | NotFound | Conflict | Unauthorized
