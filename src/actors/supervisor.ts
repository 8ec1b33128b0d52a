/**
 * The supervisor: loads config.json and the projects it lists, starts one project actor
 * per project, and publishes the routing table the ingress reads. Hosts added or removed
 * at run time are announced on `hamlet.ctl.hosts` so every node of a fleet follows.
 */
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { Bus } from "../bus/bus.ts"
import { decodeText, encodeJson } from "../bus/envelope.ts"
import { controlSubject } from "../bus/subjects.ts"
import { loadConfig, type LoadedConfig } from "../config/config.ts"
import { buildRoutingTable, type RoutingTable } from "../ingress/routing.ts"
import { loadProject } from "../projects/loader.ts"
import { Database, query } from "../store/database.ts"
import { migrateCore } from "../store/migrations.ts"
import { type ProjectActor, startProjectActor } from "./project-actor.ts"

export const HostChange = Schema.Struct({
  action: Schema.Literals(["add", "remove"]),
  project: Schema.String,
  host: Schema.String,
})
export type HostChange = typeof HostChange.Type

export const HOSTS_CONTROL_SUBJECT = controlSubject("hosts")

export class Supervisor extends Context.Service<Supervisor, {
  /** The current routing table; swapped atomically on change. */
  readonly routing: () => RoutingTable
  readonly config: LoadedConfig
  /** Applies a host change on this node only (the control subscription calls this). */
  readonly applyHostChange: (change: HostChange) => Effect.Effect<void>
}>()("hamlet/Supervisor") {}

export const SupervisorLive = (configPath: string): Layer.Layer<Supervisor, Error, Database | Bus> =>
  Layer.effect(
    Supervisor,
    Effect.gen(function* () {
      const { sql } = yield* Database
      const bus = yield* Bus
      const loaded = yield* loadConfig(configPath)
      yield* migrateCore(sql)
      const projects = yield* Effect.forEach(
        loaded.projectDirs,
        (dir) =>
          Effect.suspend(() => loadProject(dir, undefined)).pipe(
            Effect.flatMap((p) =>
              Effect.succeed({ ...p, projectKey: p.projectKey ?? keyFromConfig(loaded, p.name) })
            ),
          ),
      )
      const names = new Set<string>()
      for (const p of projects) {
        if (names.has(p.name)) return yield* Effect.fail(new Error(`project ${p.name} is listed twice`))
        names.add(p.name)
      }
      const registered = yield* query(() => sql`select host, project, source from hamlet_hosts`)
      const registeredHosts = new Map(registered.map((r) => [String(r.host), String(r.project)]))
      const databaseHosts = registered.filter((r) => r.source === "database")
        .map((r) => ({ host: String(r.host), project: String(r.project) }))
      let routing = yield* Effect.try({
        try: () => buildRoutingTable(projects, databaseHosts, loaded.config.defaultProject),
        catch: (e) => e as Error,
      })
      const actors = new Map<string, ProjectActor>()
      for (const project of projects) {
        const actor = yield* startProjectActor(sql, project)
        actors.set(project.name, actor)
      }
      for (const route of routing.routes.values()) {
        const isRegistered = registeredHosts.get(route.host) === route.project.name
        yield* actors.get(route.project.name)!.addHost(
          route.host,
          route.dir ? "directory" : "database",
          isRegistered,
        )
      }
      yield* Effect.logInfo("hamlet started", {
        projects: projects.map((p) => p.name),
        hosts: [...routing.routes.keys()],
      })

      const applyHostChange = (change: HostChange) =>
        Effect.gen(function* () {
          const actor = actors.get(change.project)
          if (!actor) return
          const others = [...routing.routes.values()].filter((r) => r.host !== change.host)
          if (change.action === "add") {
            const existing = routing.routes.get(change.host)
            if (existing && existing.project.name !== change.project) return
            yield* actor.addHost(change.host, "database")
            const routes = new Map(routing.routes)
            routes.set(change.host, existing ?? { host: change.host, project: actor.project, dir: undefined })
            routing = { ...routing, routes }
          } else {
            routing = { ...routing, routes: new Map(others.map((r) => [r.host, r])) }
            yield* actor.removeHost(change.host)
          }
        }).pipe(Effect.catchCause((cause) => Effect.logError("host change failed", change, cause)))

      const decodeChange = Schema.decodeUnknownSync(HostChange)
      const context = yield* Effect.context<never>()
      yield* bus.subscribe(HOSTS_CONTROL_SUBJECT, (message) => {
        try {
          const change = decodeChange(JSON.parse(decodeText(message.data)))
          Effect.runForkWith(context)(applyHostChange(change))
        } catch (e) {
          Effect.runForkWith(context)(Effect.logWarning("ignored bad control message", String(e)))
        }
      })

      return { routing: () => routing, config: loaded, applyHostChange }
    }),
  )

const keyFromConfig = (loaded: LoadedConfig, project: string) => {
  const key = loaded.config.projectKeys?.[project]
  return key === undefined ? undefined : Redacted.make(key)
}

/** Announces a host change to every node (including this one). */
export const announceHostChange = (change: HostChange) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    yield* bus.publish(HOSTS_CONTROL_SUBJECT, encodeJson(change))
  })
