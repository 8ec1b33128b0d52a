/**
 * Handlers: one per file in a project's api/ folder. A handler declares its input and
 * output Schemas and runs as an Effect with a host-scoped context. Commands run one at a
 * time per host and may emit events; queries only read and may run concurrently.
 */
import type { Effect, Redacted, Schema } from "effect"
import type { DatabaseError } from "../store/database.ts"
import type { HostReader } from "./access.ts"
import type { HandlerError } from "./errors.ts"
import type { EventDef } from "./event.ts"
import { PASCAL_NAME } from "./names.ts"

export interface RequestMetadata {
  readonly correlationId?: string | undefined
  readonly causationId?: string | undefined
  readonly idempotencyKey?: string | undefined
  readonly session?: string | undefined
}

/** What a query's handler gets: reads, no `emit` (a query writes nothing). */
export interface QueryContext {
  readonly host: string
  readonly project: string
  readonly requestId: string
  readonly meta: RequestMetadata
  /** Host-scoped reads; inside a command they see this batch's earlier writes. */
  readonly db: HostReader
  /** The project's key, redacted; undefined when the project has none. */
  readonly projectKey: Redacted.Redacted<string> | undefined
}

/** What a command's handler gets: a query's context and `emit`. */
export interface HandlerContext extends QueryContext {
  /** Records an event; it is appended and projected when the command commits. */
  readonly emit: <S extends Schema.Top>(event: EventDef<S>, data: S["Type"]) => Effect.Effect<void>
}

export type HandlerKind = "command" | "query"

export interface Handler<I extends Schema.Top = Schema.Top, O extends Schema.Top = Schema.Top> {
  readonly _tag: "Handler"
  readonly name: string
  readonly kind: HandlerKind
  readonly input: I
  readonly output: O
  /** Overrides the project's handler time limit. */
  readonly timeoutMs?: number
  /**
   * Queries: identical concurrent requests to one host (same input and metadata) share one
   * run and its reply (default true). Set false when the output depends on `ctx.requestId`.
   */
  readonly coalesce?: boolean
  readonly handle: (
    input: I["Type"],
    ctx: HandlerContext,
  ) => Effect.Effect<O["Type"], HandlerError | DatabaseError>
}

interface HandlerSpec<I extends Schema.Top, O extends Schema.Top, C = HandlerContext> {
  readonly name: string
  readonly input: I
  readonly output: O
  readonly timeoutMs?: number
  readonly coalesce?: boolean
  readonly handle: (input: I["Type"], ctx: C) => Effect.Effect<O["Type"], HandlerError | DatabaseError>
}

const checkName = (name: string) => {
  if (!PASCAL_NAME.test(name)) throw new Error(`handler name "${name}" must be PascalCase`)
}

/**
 * Declares a command: runs alone on its host, may `emit` events.
 *
 * @example
 * ```ts
 * export default defineCommand({
 *   name: "CreatePost",
 *   input: Schema.Struct({ title: Schema.String }),
 *   output: Schema.Struct({ id: Schema.String }),
 *   handle: (input, ctx) => Effect.gen(function* () { … }),
 * })
 * ```
 */
export const defineCommand = <I extends Schema.Top, O extends Schema.Top>(
  spec: HandlerSpec<I, O>,
): Handler<I, O> => {
  checkName(spec.name)
  return { _tag: "Handler", kind: "command", ...spec }
}

/**
 * Declares a query: read-only, callable with GET, runs concurrently; identical concurrent
 * requests share one run unless `coalesce: false`. Its context has no `emit`: an event must come
 * from a command (a query's run is not a write, and nothing it emitted would be kept).
 */
export const defineQuery = <I extends Schema.Top, O extends Schema.Top>(
  spec: HandlerSpec<I, O, QueryContext>,
): Handler<I, O> => {
  checkName(spec.name)
  return { _tag: "Handler", kind: "query", ...spec }
}
