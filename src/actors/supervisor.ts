/**
 * The supervisor: runs one project actor per project in config.json and publishes the
 * routing table the ingress reads. It reconciles on start, when config.json or a hosts/
 * folder changes, and on `<root>.ctl.reload`; hosts added or removed at run time arrive on
 * `<root>.ctl.hosts`, so every node of a fleet follows.
 */
import { Context, Effect, Layer, Schema, Scope, Semaphore, Stream } from "effect"
import { Bus, type BusUnavailable } from "../bus/bus.ts"
import { decodeText, encodeJson } from "../bus/envelope.ts"
import { controlSubject } from "../bus/subjects.ts"
import { loadConfig, type LoadedConfig } from "../config/config.ts"
import { watchPaths } from "../config/watch.ts"
import { isValidHostname } from "../ingress/host.ts"
import type { RoutingTable } from "../ingress/routing.ts"
import { Database, type DatabaseError, query } from "../store/database.ts"
import { makeReadLanes } from "../store/read-lanes.ts"
import { registerHost } from "../store/event-log.ts"
import { migrateCore } from "../store/migrations.ts"
import { makeReconciler } from "./reconcile.ts"

export const HostChange = Schema.Struct({
  action: Schema.Literals(["add", "remove"]),
  project: Schema.String,
  host: Schema.String,
})
export type HostChange = typeof HostChange.Type

export const HOSTS_CONTROL_SUBJECT = controlSubject("hosts")
export const RELOAD_CONTROL_SUBJECT = controlSubject("reload")

export class Supervisor extends Context.Service<Supervisor, {
  /** The current routing table; swapped atomically on change. */
  readonly routing: () => RoutingTable
  readonly config: () => LoadedConfig
  /**
   * Applies a host change on this node only (the control subscription calls this); an add
   * registers the host, and fails with HOST_OWNED when another project owns its log.
   */
  readonly applyHostChange: (change: HostChange) => Effect.Effect<void, DatabaseError | BusUnavailable>
  /** Re-reads config.json and the host folders and converges to them. */
  readonly reload: Effect.Effect<void, Error>
}>()("hamlet/Supervisor") {}

/** `runsHosts` false: routing only, no host actors (an ingress-only isolate; see node-isolates.ts). */
export const SupervisorLive = (
  configPath: string,
  runsHosts = true,
): Layer.Layer<Supervisor, Error, Database | Bus> =>
  Layer.effect(
    Supervisor,
    Effect.gen(function* () {
      const { sql } = yield* Database
      const bus = yield* Bus
      const scope = yield* Scope.Scope
      yield* migrateCore(sql)
      const reconciler = yield* makeReconciler(sql, makeReadLanes(sql), scope, runsHosts)
      const lock = yield* Semaphore.make(1)
      let config = yield* loadConfig(configPath)

      const reload = lock.withPermit(
        Effect.gen(function* () {
          const next = yield* loadConfig(configPath)
          yield* reconciler.converge(next)
          config = next
        }),
      )
      yield* reload

      const applyHostChange = (change: HostChange) =>
        lock.withPermit(
          Effect.gen(function* () {
            // anyone on the bus may publish here: a host must be a hostname before it is registered
            // (it becomes a subject token, a partition's key and a route)
            if (!isValidHostname(change.host)) {
              return yield* Effect.logWarning(
                "ignored a host change for a host that is not a hostname",
                change,
              )
            }
            if (change.action === "add") {
              if (!reconciler.hasProject(change.project)) return
              yield* registerHost(sql, change.project, change.host, "database")
              yield* reconciler.addDatabaseHost(change.project, change.host)
            } else {
              yield* reconciler.removeDatabaseHost(change.project, change.host)
            }
          }),
        )

      const decodeChange = Schema.decodeUnknownSync(HostChange)
      const context = yield* Effect.context<never>()
      const runFork = Effect.runForkWith(context)
      yield* bus.subscribe(HOSTS_CONTROL_SUBJECT, (message) => {
        try {
          const change = decodeChange(JSON.parse(decodeText(message.data)))
          runFork(
            applyHostChange(change).pipe(
              Effect.catchCause((cause) => Effect.logError("host change failed", change, cause)),
            ),
          )
        } catch (e) {
          runFork(Effect.logWarning("ignored bad control message", String(e)))
        }
      })
      const reloadLogged = reload.pipe(
        Effect.catchCause((cause) => Effect.logError("reload failed; keeping the previous routing", cause)),
      )
      yield* bus.subscribe(RELOAD_CONTROL_SUBJECT, () => void runFork(reloadLogged))
      // the config file and each project's hosts/ folder (not the whole tree: data dirs churn)
      yield* watchPaths([config.path, ...config.projectDirs.map((d) => `${d}/hosts`)]).pipe(
        Stream.runForEach(() => reloadLogged),
        Effect.forkScoped,
      )

      return { routing: () => reconciler.routing(), config: () => config, applyHostChange, reload }
    }),
  )

/** Announces a host change to every node (including this one). */
export const announceHostChange = (change: HostChange) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    yield* bus.publish(HOSTS_CONTROL_SUBJECT, encodeJson(change))
  })

/**
 * Marks a run-time host removed so it stays removed after a restart; its partition and
 * log are kept for audit (`hamlet_hosts` still names the owning project).
 */
export const retireDatabaseHost = (sql: Database["Service"]["sql"], project: string, host: string) =>
  query(() =>
    sql`update hamlet_hosts set removed_at = now()
        where host = ${host} and project = ${project} and source = 'database' and removed_at is null
        returning host`
  ).pipe(Effect.map((rows) => rows.length === 1))
