/**
 * Loads a project folder: project.ts (default export of defineProject), one handler per
 * api/*.ts file (default export), and hosts from hosts/<hostname>/ directories.
 */
import { Effect, Redacted, Schema } from "effect"
import { readdir, stat } from "node:fs/promises"
import { basename, join } from "node:path"
import { pathToFileURL } from "node:url"
import { PROJECT_KEY, PROJECT_KEY_RULE, ProjectName } from "../config/config.ts"
import { isValidHostname } from "../ingress/host.ts"
import type { Handler } from "./handler.ts"
import { type Model, relationClash, relationsOf } from "./model.ts"
import { DEFAULT_LIMITS, type ProjectDef, type ProjectLimits } from "./project.ts"
import { type LoadedSchedule, loadSchedules } from "./schedules.ts"
import type { Projection } from "./projection.ts"
import { purgeProjection } from "../schedule/system-events.ts"
import { type DeclaredEvents, declaredEventsOf } from "./declared-events.ts"

export class ProjectLoadError extends Schema.TaggedError<ProjectLoadError>()("ProjectLoadError", {
  dir: Schema.String,
  message: Schema.String,
}) {}

export interface LoadedProject {
  readonly name: string
  readonly dir: string
  readonly models: ReadonlyArray<Model>
  readonly handlers: ReadonlyMap<string, Handler>
  readonly projections: ReadonlyMap<string, ReadonlyArray<Projection>>
  /** The event types project.ts declares (declared-events.ts); `undefined`: any may be emitted. */
  readonly events: DeclaredEvents
  readonly limits: ProjectLimits
  readonly schedules: ReadonlyArray<LoadedSchedule>
  /** Hosts declared by directories under hosts/. */
  readonly hostDirs: ReadonlyMap<string, string>
  readonly projectKey: Redacted.Redacted<string> | undefined
}

/** How long a run of `handler` may take: its own time limit, else its project's. */
export const handlerTimeoutMs = (project: LoadedProject, handler: Handler | undefined): number =>
  handler?.timeoutMs ?? project.limits.handlerTimeoutMs

/** Extra time a caller waits beyond the handler's limit before giving up (answering 504). */
const REPLY_MARGIN_MS = 1_000

/** How long a caller over the bus waits for `handler`'s answer. */
export const replyTimeoutMs = (project: LoadedProject, handler: Handler | undefined): number =>
  handlerTimeoutMs(project, handler) + REPLY_MARGIN_MS

const fail = (dir: string, message: string) => new ProjectLoadError({ dir, message })

/**
 * Why a limit (`limits` in project.ts, or a handler's `timeoutMs`) is unusable, or undefined: each
 * must be a positive finite number (a mailbox size a whole one). A NaN limit (an unset variable
 * through `Number(…)`), zero or a negative one otherwise loads and fails every request (504, 503, 413).
 */
const badLimit = (name: string, value: unknown, isWhole = false): string | undefined => {
  if (value === undefined) return undefined
  const isUsable = typeof value === "number" && Number.isFinite(value) && value > 0 &&
    (!isWhole || Number.isInteger(value))
  return isUsable
    ? undefined
    : `${name} must be a positive ${isWhole ? "whole" : "finite"} number, got ${String(value)}`
}

const listDir = (path: string) => Effect.promise(() => readdir(path, { withFileTypes: true }).catch(() => []))

/**
 * Files whose import failed, with their modification time then. The runtime keeps a failed
 * module failed for its URL, so once such a file has changed it is imported under a URL of its
 * own (`?v=<mtime>`): fixing a broken project.ts or api/ file takes effect at the next reload.
 * A module those import (model.ts, say) that threw when it ran stays failed until a restart, and
 * a project already running is not imported again: code changes need a restart.
 */
const failedImports = new Map<string, number>()

const importDefault = (dir: string, file: string) =>
  Effect.tryPromise({
    try: async () => {
      const url = pathToFileURL(file)
      const failedAt = failedImports.get(file)
      const mtime = (await stat(file).catch(() => undefined))?.mtimeMs ?? 0
      if (failedAt !== undefined && failedAt !== mtime) url.search = `v=${mtime}`
      try {
        return (await import(url.href)).default as unknown
      } catch (error) {
        failedImports.set(file, mtime)
        throw error
      }
    },
    catch: (e) => fail(dir, `cannot load ${file}: ${(e as Error).message}`),
  })

/**
 * A project's key: its variable (HAMLET_PROJECT_KEY_MY_PROJECT), else the one config.json gives;
 * an empty variable is no key. A key no client could send (config.ts `PROJECT_KEY`) fails the
 * project's load, naming where it came from, never the key.
 */
export const resolveProjectKey = (
  dir: string,
  project: string,
  configured?: string,
): Effect.Effect<Redacted.Redacted<string> | undefined, ProjectLoadError> =>
  Effect.suspend(() => {
    const variable = projectKeyVariable(project)
    const fromVariable = Deno.env.get(variable)
    const key = fromVariable || configured
    if (!key) return Effect.succeed(undefined)
    if (!PROJECT_KEY.test(key)) {
      const source = fromVariable ? variable : `config.json projectKeys.${project}`
      return Effect.fail(fail(dir, `${source} is not a usable project key: ${PROJECT_KEY_RULE}`))
    }
    return Effect.succeed(Redacted.make(key))
  })

/** The environment variable that carries a project's key: HAMLET_PROJECT_KEY_MY_PROJECT. */
export const projectKeyVariable = (project: string): string =>
  `HAMLET_PROJECT_KEY_${project.toUpperCase().replaceAll("-", "_")}`

/** Hosts declared by directories under `<dir>/hosts/` (hostname → folder). */
export const scanHostDirs = (dir: string): Effect.Effect<ReadonlyMap<string, string>, ProjectLoadError> =>
  Effect.gen(function* () {
    const hostDirs = new Map<string, string>()
    for (const entry of yield* listDir(join(dir, "hosts"))) {
      // a symlink to a directory is a host folder too (a site linked in); one to anything else is not
      const isFolder = entry.isDirectory() || (entry.isSymbolicLink() &&
        (yield* Effect.promise(() =>
          stat(join(dir, "hosts", entry.name)).then((s) => s.isDirectory(), () => false)
        )))
      if (!isFolder) continue
      const host = entry.name.toLowerCase()
      if (!isValidHostname(host)) return yield* fail(dir, `hosts/${entry.name} is not a valid hostname`)
      hostDirs.set(host, join(dir, "hosts", entry.name))
    }
    return hostDirs
  })

export const loadProject = (
  dir: string,
  configuredKey: string | undefined,
): Effect.Effect<LoadedProject, ProjectLoadError> =>
  Effect.gen(function* () {
    const exists = yield* Effect.promise(() => stat(join(dir, "project.ts")).then(() => true, () => false))
    if (!exists) return yield* fail(dir, `no project.ts in ${dir}`)
    const def = (yield* importDefault(dir, join(dir, "project.ts"))) as ProjectDef
    if (def?._tag !== "ProjectDef") {
      return yield* fail(dir, "project.ts must `export default defineProject({...})`")
    }
    yield* Schema.decodeUnknownEffect(ProjectName)(def.name).pipe(
      Effect.mapError((e) => fail(dir, `project name: ${e.message}`)),
    )
    const handlers = new Map<string, Handler>()
    const addHandler = (handler: Handler, where: string) =>
      handlers.has(handler.name)
        ? Effect.fail(fail(dir, `handler ${handler.name} is declared twice (${where})`))
        : Effect.sync(() => void handlers.set(handler.name, handler))
    for (const h of def.handlers ?? []) yield* addHandler(h, "project.ts")
    const apiFiles = (yield* listDir(join(dir, "api")))
      .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts"))
      .map((e) => e.name)
      .sort()
    for (const file of apiFiles) {
      const handler = (yield* importDefault(dir, join(dir, "api", file))) as Handler
      if (handler?._tag !== "Handler") return yield* fail(dir, `api/${file} must export default a handler`)
      if (handler.name !== basename(file, ".ts")) {
        return yield* fail(
          dir,
          `api/${file} declares handler "${handler.name}"; the file must be named after it`,
        )
      }
      yield* addHandler(handler, `api/${file}`)
    }
    for (const [name, value] of Object.entries(def.limits ?? {})) {
      const problem = badLimit(`limits.${name}`, value, name === "mailboxSize")
      if (problem) return yield* fail(dir, problem)
    }
    for (const handler of handlers.values()) {
      const problem = badLimit(`handler ${handler.name}'s timeoutMs`, handler.timeoutMs)
      if (problem) return yield* fail(dir, problem)
    }
    const schedules = loadSchedules(def.schedules ?? [], handlers)
    if ("problem" in schedules) return yield* fail(dir, schedules.problem)
    // two models naming one table would share it, each migration loosening the other's columns
    const tables = new Map<string, Model>()
    for (const model of def.models ?? []) {
      const known = tables.get(model.table)
      if (known && known !== model) {
        return yield* fail(dir, `models declares table ${model.table} twice, as two different models`)
      }
      tables.set(model.table, model)
    }
    // tables and indexes share the project's schema: one named like another is never made
    const clash = relationClash(
      [...tables.values()].flatMap((model) => relationsOf(model.table, model.options)),
    )
    if (clash) return yield* fail(dir, `models clash in the project's schema: ${clash}`)
    const events = declaredEventsOf(def.events, def.projections ?? [])
    if ("problem" in events) return yield* fail(dir, events.problem)
    const projections = new Map<string, Array<Projection>>()
    // the built-in purge projection first: replay must reproduce the cleanup actors' work
    for (const p of [purgeProjection(def.models ?? []), ...(def.projections ?? [])]) {
      projections.set(p.eventType, [...(projections.get(p.eventType) ?? []), p])
    }
    const hostDirs = yield* scanHostDirs(dir)
    return {
      name: def.name,
      dir,
      models: def.models ?? [],
      handlers,
      projections,
      events: events.declared,
      // a limit left undefined keeps its default
      limits: {
        ...DEFAULT_LIMITS,
        ...Object.fromEntries(Object.entries(def.limits ?? {}).filter(([, v]) => v !== undefined)),
      },
      hostDirs,
      projectKey: yield* resolveProjectKey(dir, def.name, configuredKey),
      schedules: schedules.schedules,
    }
  })
