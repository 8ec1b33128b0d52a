/**
 * Hamlet's public API for project authors: declare models (read tables), events,
 * projections and handlers, and the errors a handler may fail with.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { defineCommand } from "../../mod.ts"
 *
 * export default defineCommand({
 *   name: "CreatePost",
 *   input: Schema.Struct({ title: Schema.String }),
 *   output: Schema.Struct({ id: Schema.String }),
 *   handle: (input, ctx) =>
 *     Effect.gen(function* () {
 *       const id = crypto.randomUUID()
 *       yield* ctx.emit(PostCreated, { id, title: input.title })
 *       return { id }
 *     }),
 * })
 * ```
 * @module
 */
export { defineModel, type Model, type ModelOptions, type ModelRow } from "./src/projects/model.ts"
export { defineEvent, type EventDef, type RecordedEvent } from "./src/projects/event.ts"
export { defineProjection, type Projection } from "./src/projects/projection.ts"
export {
  defineCommand,
  defineQuery,
  type Handler,
  type HandlerContext,
  type QueryContext,
  type RequestMetadata,
} from "./src/projects/handler.ts"
export { defineProject, type ProjectLimits, type ProjectSpec } from "./src/projects/project.ts"
export type { HostReader, ListOptions, ProjectionWriter } from "./src/projects/access.ts"
export { BadRequest, Conflict, type HandlerError, NotFound, Unauthorized } from "./src/projects/errors.ts"

// for services that add or remove a project's hosts over NATS (README: NATS)
export {
  type HostCommandFields,
  type SignedHostCommand,
  signHostChange,
} from "./src/admin/host-change-signature.ts"
