/**
 * A project: its models, events, projections and handlers, as declared in project.ts.
 * The loader adds the handlers found in api/ and the hosts found in hosts/.
 */
import type { Duration } from "effect"
import type { EventDef } from "./event.ts"
import type { Handler } from "./handler.ts"
import type { Model } from "./model.ts"
import type { Projection } from "./projection.ts"

export interface ProjectLimits {
  /** Largest accepted request body, bytes (413 beyond). */
  readonly maxBodyBytes: number
  /** Time limit of one handler run, ms (504 beyond). */
  readonly handlerTimeoutMs: number
  /** Bounded mailbox per host actor (503 when full). */
  readonly mailboxSize: number
  /** An idle host's worker (mailbox + fiber) stops after this long; its subscription stays. */
  readonly idleMs: number
}

export const DEFAULT_LIMITS: ProjectLimits = {
  maxBodyBytes: 256 * 1024,
  handlerTimeoutMs: 5_000,
  mailboxSize: 1024,
  idleMs: 30_000,
}

/**
 * A per-project scheduled event: every `every`, exactly one node of the fleet sends the
 * command `command` to each host of the project (input `{ period }`, the period's start as
 * ISO text), with an idempotency key per period so a host runs it at most once. What the
 * command emits lands in each host's log like any other write.
 */
export interface ProjectSchedule {
  readonly name: string
  readonly every: Duration.Input
  readonly command: string
}

export interface ProjectSpec {
  readonly name: string
  readonly models?: ReadonlyArray<Model>
  readonly events?: ReadonlyArray<EventDef>
  readonly projections?: ReadonlyArray<Projection>
  /** Handlers declared inline; the loader also collects api/*.ts default exports. */
  readonly handlers?: ReadonlyArray<Handler>
  readonly limits?: Partial<ProjectLimits>
  readonly schedules?: ReadonlyArray<ProjectSchedule>
}

export interface ProjectDef extends ProjectSpec {
  readonly _tag: "ProjectDef"
}

/**
 * Declares a project (the default export of `projects/<name>/project.ts`).
 *
 * @example
 * ```ts
 * export default defineProject({ name: "othello", models: [Post], events: [PostCreated], projections })
 * ```
 */
export const defineProject = (spec: ProjectSpec): ProjectDef => ({ _tag: "ProjectDef", ...spec })
