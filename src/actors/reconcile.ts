/**
 * Converging running project and host actors to a desired state (config.json, host
 * folders, hosts registered in the database). New hosts start before the routing table
 * is swapped and old ones stop after, so no request finds a route without an actor.
 */
import { Effect, Exit, Scope } from "effect"
import type { Bus } from "../bus/bus.ts"
import type { DeadLetters } from "./dead-letters.ts"
import type { LoadedConfig } from "../config/config.ts"
import { isValidHostname } from "../ingress/host.ts"
import { buildRoutingTable, type Route, type RoutingTable, tableFromRoutes } from "../ingress/routing.ts"
import { type LoadedProject, loadProject, resolveProjectKey, scanHostDirs } from "../projects/loader.ts"
import { query, type Sql } from "../store/database.ts"
import type { ReadLanes } from "../store/read-lanes.ts"
import { type ProjectActor, startProjectActor } from "./project-actor.ts"

interface Running {
  readonly loaded: LoadedProject
  readonly actor: ProjectActor
  readonly scope: Scope.Closeable
}

const EMPTY: RoutingTable = { routes: new Map(), fallback: undefined, projects: new Map() }

/**
 * What the actor isolate of this node answered when asked to follow a host (see
 * node-isolates.ts): it serves the host, it does not (the database said otherwise, or its
 * actor failed to start), or it did not answer in time.
 */
export type ActorsFollowed = "served" | "unserved" | "timeout"

/** Asks the isolate running this node's host actors to converge one host to hamlet_hosts. */
export type FollowInActors = (host: string) => Promise<ActorsFollowed>

/**
 * `followInActors` is set in an ingress-only isolate (`runsHosts` false) whose host actors run
 * in another isolate: a host is routed only once they serve it, so a route never points at a
 * host without an actor on this node.
 */
export const makeReconciler = (
  sql: Sql,
  lanes: ReadLanes,
  parent: Scope.Scope,
  runsHosts = true,
  followInActors?: () => FollowInActors | undefined,
) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<Bus | DeadLetters>()
    // projects stop side by side, as their hosts do (project-actor.ts)
    const projectScopes = yield* Scope.fork(parent, "parallel")
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
        return Effect.flatMap(loaded, (p) =>
          Effect.map(
            resolveProjectKey(p.dir, p.name, config.config.projectKeys?.[p.name]),
            (projectKey): LoadedProject => ({ ...p, projectKey }),
          ))
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
        const scope = yield* Scope.fork(projectScopes)
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
        // a folder clashing with another project's run-time host is the folder's mistake, not a
        // config error: the host stays with its owner and the rest of the change goes ahead
        for (const { host, folderProject, owner } of built.overruled) {
          const message = "host folder not served: another project registered the host and owns its log"
          yield* Effect.logError(message, { host, project: folderProject, owner })
        }
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
          ).pipe(Effect.catchTag(
            // only what a retry cannot mend: a passing failure (a lock timeout, the bus) fails the
            // converge, which keeps the previous routing and is tried again at the next change
            "HostOwnedElsewhere",
            (error) =>
              Effect.logError("host not served", { host: route.host, project: route.project.name, error })
                .pipe(
                  Effect.andThen(Effect.sync(() => routes.delete(route.host))),
                ),
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
        // once per node: the isolate that runs the hosts (the same write from both would do nothing more)
        if (runsHosts) yield* retireGoneFolderHosts(projects)
        yield* Effect.logInfo("routing converged", { projects: [...names], hosts: table.routes.size })
      })

    /**
     * A folder host whose folder is gone is no longer served: its row is marked removed (log
     * kept), so the listing agrees and a later registration through the API starts afresh.
     * Only rows of projects loaded here, and only `directory` ones: a run-time host stays.
     * A failure is logged, never fails the reload (the routing is already swapped).
     */
    const retireGoneFolderHosts = (projects: ReadonlyArray<LoadedProject>) => {
      const folderHosts = projects.flatMap((p) => [...p.hostDirs.keys()])
      const names = projects.map((p) => p.name)
      return query(() =>
        sql`update hamlet_hosts set removed_at = now()
            where source = 'directory' and removed_at is null
              and project = any(${names}::text[]) and not (host = any(${folderHosts}::text[]))
            returning host`
      ).pipe(
        Effect.flatMap((rows) =>
          rows.length === 0
            ? Effect.void
            : Effect.logInfo("folder hosts removed", { hosts: rows.map((r) => String(r.host)) })
        ),
        Effect.catch((error) => Effect.logError("could not mark removed folder hosts", error)),
      )
    }

    /**
     * Converges this isolate to hamlet_hosts for one run-time host, whatever a message said:
     * served iff its row is live, `database` and of a project loaded here (a folder route is
     * left alone; folders change at a reload). True when this node serves the host — in an
     * ingress-only isolate, once its actor isolate has confirmed (on a timeout it is routed
     * anyway, as the actors follow the same announcement, and false is returned).
     */
    const syncHost = (host: string) =>
      Effect.gen(function* () {
        const rows = yield* query(() =>
          sql`select project, source, removed_at from hamlet_hosts where host = ${host}`
        )
        const row = rows[0]
        const existing = routing.routes.get(host)
        if (existing?.dir) return true
        const wanted = row && row.removed_at === null && row.source === "database"
          ? running.get(String(row.project))
          : undefined
        const follow = followInActors?.()
        if (!wanted) {
          if (existing) {
            // unrouted first, so no request is sent to an actor that is stopping
            withRoutes((routes) => routes.delete(host))
            yield* running.get(existing.project.name)?.actor.removeHost(host) ?? Effect.void
          }
          if (follow) yield* Effect.promise(() => follow(host))
          return false
        }
        if (existing?.project.name === wanted.loaded.name) return true
        if (existing) {
          withRoutes((routes) => routes.delete(host))
          yield* running.get(existing.project.name)?.actor.removeHost(host) ?? Effect.void
        }
        let followed: ActorsFollowed = "served"
        if (follow) {
          followed = yield* Effect.promise(() => follow(host))
          if (followed === "unserved") return false
        }
        // its live row was just read: adding a registered host registers nothing, so a registration
        // failure here would be a bug
        yield* wanted.actor.addHost(host, "database", true).pipe(
          Effect.catchTag(["BadHostname", "HostOwnedElsewhere", "RegistrationLocked"], Effect.die),
        )
        withRoutes((routes) => routes.set(host, { host, project: wanted.loaded, dir: undefined }))
        return followed === "served"
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
      syncHost,
    }
  })
