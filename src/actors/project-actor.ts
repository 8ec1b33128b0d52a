/**
 * A project actor: migrates the project's read tables, then owns one host actor per host,
 * each in its own scope so a host can be added or removed without touching the others.
 * With `runsHosts` false (an ingress-only isolate) it tracks the hosts for routing and
 * starts no host actors: another isolate of the node serves them.
 */
import { Effect, Exit, Scope } from "effect"
import type { Bus, BusUnavailable } from "../bus/bus.ts"
import type { DeadLetters } from "./dead-letters.ts"
import type { LoadedProject } from "../projects/loader.ts"
import type { DatabaseError, Sql } from "../store/database.ts"
import { registerHost, type RegisterHostError } from "../store/event-log.ts"
import { migrateProject } from "../store/project-schema.ts"
import type { ReadLanes } from "../store/read-lanes.ts"
import { startHostActor } from "./host-actor.ts"

export interface ProjectActor {
  readonly project: LoadedProject
  readonly hosts: () => ReadonlyArray<string>
  /** Starts the host's actor; registers the host (partition) first unless `isRegistered`. */
  readonly addHost: (
    host: string,
    source: "directory" | "database",
    isRegistered?: boolean,
  ) => Effect.Effect<void, RegisterHostError | BusUnavailable>
  readonly removeHost: (host: string) => Effect.Effect<void>
}

export const startProjectActor = (
  sql: Sql,
  lanes: ReadLanes,
  project: LoadedProject,
  runsHosts = true,
): Effect.Effect<ProjectActor, DatabaseError, Scope.Scope | Bus | DeadLetters> =>
  Effect.gen(function* () {
    yield* migrateProject(sql, project.name, project.models)
    // the hosts' scopes close side by side: a node stopping while the store stalls drains every host
    // within one drain window, not one window per busy host in turn
    const hostScopesParent = yield* Scope.fork(yield* Scope.Scope, "parallel")
    const context = yield* Effect.context<Bus | DeadLetters>()
    /** A host's actor scope; undefined when this isolate only routes to it (`runsHosts` false). */
    const hostScopes = new Map<string, Scope.Closeable | undefined>()

    const removeHost = (host: string) =>
      Effect.suspend(() => {
        if (!hostScopes.has(host)) return Effect.void
        const scope = hostScopes.get(host)
        hostScopes.delete(host)
        return scope ? Scope.close(scope, Exit.void) : Effect.void
      })

    const addHost = (host: string, source: "directory" | "database", isRegistered = false) =>
      Effect.gen(function* () {
        if (hostScopes.has(host)) return
        // registering also checks ownership: an ingress-only isolate must not route a host whose
        // log another project owns (idempotent; the actor isolate has done it already)
        if (!isRegistered) yield* registerHost(sql, project.name, host, source)
        if (!runsHosts) return void hostScopes.set(host, undefined)
        const scope = yield* Scope.fork(hostScopesParent)
        hostScopes.set(host, scope)
        yield* startHostActor(sql, lanes, project, host).pipe(
          Scope.provide(scope),
          Effect.provide(context),
          Effect.onError(() => removeHost(host)),
        )
      }).pipe(Effect.annotateLogs({ project: project.name, host }))

    return { project, hosts: () => [...hostScopes.keys()], addHost, removeHost }
  })
