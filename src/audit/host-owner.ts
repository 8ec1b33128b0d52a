/**
 * Which project owns a host's log (hamlet_hosts, written when the host was registered),
 * and the loaded projects of a config.json, so the audit tools can find the projections
 * that shaped a host's read tables.
 */
import { Effect, Schema } from "effect"
import { loadConfig } from "../config/config.ts"
import { type LoadedProject, loadProject } from "../projects/loader.ts"
import type { SqlTx } from "../store/database.ts"
import { hostOwner } from "../store/event-log.ts"

export class HostNotFound extends Schema.TaggedError<HostNotFound>()("HostNotFound", {
  host: Schema.String,
}) {
  override get message() {
    return `no event log for host ${this.host}`
  }
}

export class ProjectNotLoaded extends Schema.TaggedError<ProjectNotLoaded>()("ProjectNotLoaded", {
  host: Schema.String,
  project: Schema.String,
}) {
  override get message() {
    return `host ${this.host} belongs to project ${this.project}, which the config does not list`
  }
}

/** The project that owns `host`'s log. */
export const hostProject = (tx: SqlTx, host: string) =>
  hostOwner(tx, host).pipe(
    Effect.flatMap((project) => project ? Effect.succeed(project) : Effect.fail(new HostNotFound({ host }))),
  )

/** Loads every project config.json lists, by name. Keys are not needed for auditing. */
export const loadProjects = (configPath: string) =>
  Effect.gen(function* () {
    const loaded = yield* loadConfig(configPath)
    const projects = yield* Effect.forEach(loaded.projectDirs, (dir) => loadProject(dir, undefined))
    return new Map<string, LoadedProject>(projects.map((p) => [p.name, p]))
  })
