/**
 * config.json: which projects this server hosts and fleet-wide settings. Decoded with
 * Effect Schema so a bad file fails at start with a message naming the field.
 */
import { Effect, Schema } from "effect"
import { readFile } from "node:fs/promises"
import { dirname, resolve } from "node:path"

/**
 * Names a project cannot take: its read tables live in the Postgres schema of its name, and
 * `public` holds Hamlet's own tables (the log, hosts, sessions), which a model there could reach.
 */
const RESERVED_PROJECT_NAMES: ReadonlySet<string> = new Set(["public"])

/** DNS-label rules: 3–32 chars, lower-case letters, digits, single hyphens, starting with a letter. */
export const ProjectName = Schema.String.check(
  Schema.makeFilter((name: string) =>
    RESERVED_PROJECT_NAMES.has(name)
      ? `project name "${name}" is reserved (Hamlet's own tables are in the schema of that name)`
      : /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,31}$/.test(name) ||
        `project name "${name}" must be 3–32 lower-case letters, digits or single hyphens, starting with a letter`
  ),
)

/**
 * What a project key must be: it is sent as `Authorization: Bearer <key>`, so printable ASCII
 * without spaces, and 16 characters or more.
 */
export const PROJECT_KEY = /^[\x21-\x7e]{16,}$/
export const PROJECT_KEY_RULE =
  "16 or more printable ASCII characters, no spaces (it is sent as a Bearer token)"

export const HamletConfig = Schema.Struct({
  /** Paths of project folders, relative to config.json. */
  projects: Schema.Array(Schema.String).check(Schema.isMinLength(1)),
  /** Project that serves unknown hosts (opt-in); unknown hosts get 404 otherwise. */
  defaultProject: Schema.optional(ProjectName),
  /** Project keys by project name (HAMLET_PROJECT_KEY_<PROJECT> overrides). */
  projectKeys: Schema.optional(
    Schema.Record(
      ProjectName,
      Schema.String.check(Schema.isPattern(PROJECT_KEY, { expected: PROJECT_KEY_RULE })),
    ),
  ),
  /** Adds `X-Tenant-Host` to responses. */
  tenantHostHeader: Schema.optional(Schema.Boolean),
})
export type HamletConfig = typeof HamletConfig.Type

export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  path: Schema.String,
  message: Schema.String,
}) {}

export interface LoadedConfig {
  readonly path: string
  readonly config: HamletConfig
  /** Absolute project folders. */
  readonly projectDirs: ReadonlyArray<string>
}

export const decodeConfig = (path: string, json: unknown): Effect.Effect<HamletConfig, ConfigError> =>
  Schema.decodeUnknownEffect(HamletConfig)(json, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((issue) => new ConfigError({ path, message: `invalid config: ${String(issue)}` })),
  )

export const loadConfig = (path: string): Effect.Effect<LoadedConfig, ConfigError> =>
  Effect.gen(function* () {
    const absolute = resolve(path)
    const text = yield* Effect.tryPromise({
      try: () => readFile(absolute, "utf8"),
      catch: (e) =>
        new ConfigError({ path: absolute, message: `cannot read config: ${(e as Error).message}` }),
    })
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) =>
        new ConfigError({ path: absolute, message: `config is not JSON: ${(e as Error).message}` }),
    })
    const config = yield* decodeConfig(absolute, json)
    return { path: absolute, config, projectDirs: config.projects.map((p) => resolve(dirname(absolute), p)) }
  })
