/**
 * Converging running project and host actors to a desired state (config.json, host
 * folders, hosts registered in the database). New hosts start before the routing table
 * is swapped and old ones stop after, so no request finds a route without an actor.
 */
import { Effect, Exit, Redacted, Scope } from "effect"
import type { Bus } from "../bus/bus.ts"
import type { LoadedConfig } from "../config/config.ts"
import { isValidHostname } from "../ingress/host.ts"
import { buildRoutingTable, type Route, type RoutingTable, tableFromRoutes } from "../ingress/routing.ts"
import { type LoadedProject, loadProject, projectKeyVariable, scanHostDirs } from "../projects/loader.ts"
import { query, type Sql } from "../store/database.ts"
import type { ReadLanes } from "../store/read-lanes.ts"
import { type ProjectActor, startProjectActor } from "./project-actor.ts"

interface Running {
  readonly loaded: LoadedProject
  readonly actor: ProjectActor
  readonly scope: Scope.Closeable
}

const EMPTY: RoutingTable = { routes: new Map(), fallback: undefined, projects: new Map() }

export const makeReconciler = (sql: Sql, lanes: ReadLanes, parent: Scope.Scope, runsHosts = true) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<Bus>()
    const running = new Map<string, Running>()
    let routing = EMPTY
    let defaultProject: string | undefined

    /**
     * Loads what config.json lists; projects already running only rescan their hosts. Every
     * converge resolves each project's key again (its environment variable, else config.json),
     * so a rotated or removed key takes effect at the reload, not at the next restart.
     */
    const desiredProjects = (config: LoadedConfig) =>
      Effect.forEach(config.projectDirs, (dir) => {
        const current = [...running.values()].find((r) => r.loaded.dir === dir)
        const loaded = current
          ? Effect.map(scanHostDirs(dir), (hostDirs): LoadedProject => ({ ...current.loaded, hostDirs }))
          : loadProject(dir, undefined)
        return Effect.map(loaded, (p): LoadedProject => {
          const key = Deno.env.get(projectKeyVariable(p.name)) ?? config.config.projectKeys?.[p.name]
          return { ...p, projectKey: key === undefined ? undefined : Redacted.make(key) }
        })
      })

    // a row that is not a hostname (written by hand, or by a version that did not check) is
    // skipped and logged: it must not keep the node from starting
    const databaseHosts = query(() =>
      sql`select host, project, source from hamlet_hosts where removed_at is null`
    ).pipe(
      Effect.flatMap((rows) => {
        const good: Array<Record<string, unknown>> = []
        const bad: Array<string> = []
        for (const row of rows) {
          isValidHostname(String(row.host)) ? good.push(row) : bad.push(String(row.host))
        }
        const logged = bad.length === 0
          ? Effect.void
          : Effect.logError("hamlet_hosts rows that are not hostnames are not served", { hosts: bad })
        return Effect.as(logged, good)
      }),
    )

    const startProject = (project: LoadedProject) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(parent)
        const actor = yield* startProjectActor(sql, lanes, project, runsHosts).pipe(
          Scope.provide(scope),
          Effect.provide(context),
          Effect.onError(() => Scope.close(scope, Exit.void)),
        )
        running.set(project.name, { loaded: project, actor, scope })
      })

    const converge = (config: LoadedConfig) =>
      Effect.gen(function* () {
        const projects = yield* desiredProjects(config)
        const names = new Set<string>()
        for (const p of projects) {
          if (names.has(p.name)) return yield* Effect.fail(new Error(`project ${p.name} is listed twice`))
          names.add(p.name)
        }
        const registered = yield* databaseHosts
        const registeredHosts = new Map(registered.map((r) => [String(r.host), String(r.project)]))
        const built = yield* Effect.try({
          try: () =>
            buildRoutingTable(
              projects,
              registered.filter((r) => r.source === "database").map((r) => ({
                host: String(r.host),
                project: String(r.project),
              })),
              config.config.defaultProject,
            ),
          catch: (e) => e as Error,
        })
        // 1. start what is new
        for (const project of projects) {
          const current = running.get(project.name)
          if (current && current.loaded.dir !== project.dir) yield* stopProject(project.name)
          if (!running.has(project.name)) yield* startProject(project)
          else running.set(project.name, { ...running.get(project.name)!, loaded: project })
        }
        // a host that cannot start (its folder sits in one project while its log belongs to
        // another) is logged and left unrouted: it must not keep every other change, or a node, from starting
        const routes = new Map(built.routes)
        for (const route of built.routes.values()) {
          yield* running.get(route.project.name)!.actor.addHost(
            route.host,
            route.dir ? "directory" : "database",
            registeredHosts.get(route.host) === route.project.name,
          ).pipe(Effect.catch((error) =>
            Effect.logError("host not served", { host: route.host, project: route.project.name, error }).pipe(
              Effect.andThen(Effect.sync(() => routes.delete(route.host))),
            )
          ))
        }
        const table = routes.size === built.routes.size
          ? built
          : tableFromRoutes(routes, projects, config.config.defaultProject)
        // 2. swap the table
        routing = table
        defaultProject = config.config.defaultProject
        // 3. stop what is gone
        for (const { loaded, actor } of running.values()) {
          for (const host of actor.hosts()) {
            if (table.routes.get(host)?.project.name !== loaded.name) {
              yield* actor.removeHost(host)
            }
          }
        }
        for (const name of [...running.keys()]) {
          if (!names.has(name)) {
            yield* stopProject(name)
          }
        }
        yield* Effect.logInfo("routing converged", { projects: [...names], hosts: table.routes.size })
      })

    const stopProject = (name: string) =>
      Effect.suspend(() => {
        const current = running.get(name)
        running.delete(name)
        return current ? Scope.close(current.scope, Exit.void) : Effect.void
      })

    const withRoutes = (change: (routes: Map<string, Route>) => void) => {
      const routes = new Map(routing.routes)
      change(routes)
      routing = tableFromRoutes(routes, [...running.values()].map((r) => r.loaded), defaultProject)
    }
    return {
      routing: () => routing,
      converge,
      hasProject: (name: string) => running.has(name),
      /** Starts a host registered at run time (its partition already exists). */
      addDatabaseHost: (project: string, host: string) =>
        Effect.gen(function* () {
          const target = running.get(project)
          const existing = routing.routes.get(host)
          if (!target || (existing && existing.project.name !== project)) return
          yield* target.actor.addHost(host, "database", true)
          withRoutes((routes) =>
            routes.set(host, existing ?? { host, project: target.loaded, dir: undefined })
          )
        }),
      removeDatabaseHost: (project: string, host: string) =>
        Effect.gen(function* () {
          const target = running.get(project)
          const existing = routing.routes.get(host)
          if (!target || !existing || existing.project.name !== project || existing.dir) return
          withRoutes((routes) => routes.delete(host))
          yield* target.actor.removeHost(host)
        }),
    }
  })
