/**
 * The supervisor: runs one project actor per project in config.json and publishes the
 * routing table the ingress reads. It reconciles on start, when config.json or a hosts/
 * folder changes, and on `<root>.ctl.reload`; hosts added or removed at run time arrive on
 * `<root>.ctl.hosts`, so every node of a fleet follows.
 *
 * hamlet_hosts is the truth for run-time hosts; `<root>.ctl.hosts` only says which host to look
 * at again. `{action:"changed"}` is that notification: every node (each isolate) reads the host's
 * row and converges to it, so announcements that cross or arrive late still end in agreement —
 * every write is followed by a notification, and the last one read sees the last write.
 * `{action:"add"|"remove"}` is a command for other services, signed with the project key
 * (admin/host-change-signature.ts): one node (a queue group) checks it, persists it like the admin
 * API would, then sends the notification. A notification carries no authority — anyone may send
 * one — so it only ever makes a node read hamlet_hosts again, never write it.
 */
import { Context, Duration, Effect, Exit, Layer, Result, Schema, Scope, Semaphore, Stream } from "effect"
import { HostCommand, HostCommandRefused, verifyHostCommand } from "../admin/host-change-signature.ts"
import { isNewestHostCommand, recordHostCommand } from "../store/host-commands.ts"
import { Bus, type BusMessage, type BusUnavailable } from "../bus/bus.ts"
import { decodeText, encodeJson, type Reply } from "../bus/envelope.ts"
import { hostFromFolder, noRunTimeHost, registrationError, replyError } from "../errors.ts"
import { controlSubject } from "../bus/subjects.ts"
import { loadConfig, type LoadedConfig } from "../config/config.ts"
import { makePathWatch } from "../config/watch.ts"
import { isValidHostname } from "../ingress/host.ts"
import { isFolderHostOf, type RoutingTable } from "../ingress/routing.ts"
import { Database, type DatabaseError, query } from "../store/database.ts"
import { makeReadLanes } from "../store/read-lanes.ts"
import { DeadLetters, makeDeadLetters } from "./dead-letters.ts"
import { HostOwnedElsewhere, registerHost } from "../store/event-log.ts"
import { migrateCore } from "../store/migrations.ts"
import { actorIsolateFollower } from "../node-isolates.ts"
import { keepHostsInSync } from "./host-resync.ts"
import { makeReconciler } from "./reconcile.ts"

/** "Look at this host again": sent by a node after it wrote hamlet_hosts. */
export const HostNotification = Schema.Struct({
  action: Schema.Literal("changed"),
  project: Schema.String,
  host: Schema.String,
})
export type HostNotification = typeof HostNotification.Type

export const HostChange = Schema.Union([HostCommand, HostNotification])
export type HostChange = typeof HostChange.Type

/** Why a signed host change that was valid is refused all the same: it, or a later one, applied. */
const REPLAYED = "this host change, or a later one of the host, was applied already: sign each afresh"

/** Whether a host change ended refused (HostCommandRefused): nothing was written for it. */
const _isRefusal = (exit: Exit.Exit<unknown, { readonly _tag: string }>) => {
  const error = Exit.findError(exit)
  return Result.isSuccess(error) && error.success._tag === "HostCommandRefused"
}

/** A change as it may be logged: never its signature. */
const loggable = ({ action, project, host }: HostChange) => ({ action, project, host })

export const HOSTS_CONTROL_SUBJECT = controlSubject("hosts")
export const RELOAD_CONTROL_SUBJECT = controlSubject("reload")
/** The queue group in which one node of the fleet persists each `add`/`remove` command. */
const HOSTS_COMMAND_QUEUE = "hamlet-host-commands"

export class Supervisor extends Context.Service<Supervisor, {
  /** The current routing table; swapped atomically on change. */
  readonly routing: () => RoutingTable
  readonly config: () => LoadedConfig
  /**
   * Converges this node to hamlet_hosts for one run-time host. True when this node serves it
   * (in a split node: its actor isolate confirmed).
   */
  readonly syncHost: (host: string) => Effect.Effect<boolean, DatabaseError | BusUnavailable>
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
      // an ingress-only isolate runs no host actor: nothing there records a dead letter
      const deadLetters = runsHosts ? yield* makeDeadLetters(sql) : { record: () => {} }
      const reconciler = yield* makeReconciler(
        sql,
        makeReadLanes(sql),
        scope,
        runsHosts,
        runsHosts ? undefined : actorIsolateFollower,
      ).pipe(Effect.provideService(DeadLetters, deadLetters))
      const lock = yield* Semaphore.make(1)
      let config = yield* loadConfig(configPath)
      /** The config last read, applied or not: its projects are watched, also one that failed to load. */
      let listed = config

      /**
       * What is watched: the config file and each listed project's hosts/ folder (not the whole tree:
       * data dirs churn). A listed project that failed to load has its project.ts and api/ watched too,
       * so that fixing the file loads it (not its whole folder: closing a recursive watch also ends
       * Deno's watch of a folder inside it). Before the first load nothing runs yet, and nothing failed.
       */
      const watchedPaths = (hasLoaded: boolean) => {
        const running = new Set([...reconciler.routing().projects.values()].map((p) => p.dir))
        const failed = hasLoaded ? listed.projectDirs.filter((d) => !running.has(d)) : []
        return [
          config.path,
          ...listed.projectDirs.map((d) => `${d}/hosts`),
          ...failed.flatMap((d) => [`${d}/project.ts`, `${d}/api`]),
        ]
      }
      // armed before the first load: a change made while the node starts makes another reload
      const watch = yield* makePathWatch(watchedPaths(false))

      /**
       * Re-reads config.json and converges to it; then, failed or not, watches what the config last
       * read lists. Under the lock, so the watched paths follow the reloads in their order.
       */
      const reload = lock.withPermit(
        Effect.gen(function* () {
          const next = yield* loadConfig(configPath)
          listed = next
          yield* reconciler.converge(next)
          config = next
        }).pipe(Effect.ensuring(Effect.suspend(() => watch.setPaths(watchedPaths(true))))),
      )
      const reloadLogged: Effect.Effect<void> = reload.pipe(
        Effect.catchCause((cause) => Effect.logError("reload failed; keeping the previous routing", cause)),
      )
      // one watch and one consumer for the node's lifetime: a change of the watched paths re-arms the
      // watch and keeps the changes it queued (one made during a reload makes another), and nothing
      // interrupts a reload the watch started
      yield* Stream.runForEach(watch.changes, () => reloadLogged).pipe(Effect.forkIn(scope))
      yield* reload

      // anyone on the bus may publish a host: it must be a hostname before it is registered or
      // looked up (it becomes a subject token, a partition's key and a route)
      const isHost = (change: HostChange) =>
        isValidHostname(change.host) ? Effect.succeed(true) : Effect.as(
          Effect.logWarning("ignored a host change for a host that is not a hostname", loggable(change)),
          false,
        )

      // a request may come on another NATS connection (the ingress isolate's, another node's): a
      // subscription is there for it once the server has processed the SUB, which a flush confirms.
      // Bounded, and never a failure: a host served but not confirmed is "not yet" (the admin
      // API's 202), not an error after the host was written
      const subscribed = bus.flush.pipe(
        Effect.timeout(Duration.seconds(2)),
        Effect.as(true),
        Effect.orElseSucceed(() => false),
      )
      const syncHost = (host: string) =>
        lock.withPermit(reconciler.syncHost(host)).pipe(
          Effect.flatMap((isServed) => isServed ? subscribed : Effect.succeed(false)),
        )

      /**
       * Persists a host change published on the bus (an add registers the host, failing with
       * HostOwnedElsewhere when another project owns its log; a remove retires a run-time host,
       * refused as not_found, as the admin API's DELETE answers 404, when the project has no live
       * run-time row for it) and converges this node to it; the caller has checked it names a hostname.
       * hamlet_hosts decides a remove, not this node's routing: a node that has not yet followed an
       * add still removes the host, and one still routing a host removed elsewhere refuses.
       */
      const applyHostChange = (change: HostCommand) =>
        lock.withPermit(
          Effect.gen(function* () {
            if (change.action === "add" && reconciler.hasProject(change.project)) {
              const folder = reconciler.routing().routes.get(change.host)
              // another project's folder serves it: not this project's to take
              if (folder?.dir && folder.project.name !== change.project) {
                return yield* new HostOwnedElsewhere({
                  host: change.host,
                  owner: folder.project.name,
                  project: change.project,
                })
              }
              // a folder of the project serves it already: nothing to register at run time
              if (!folder?.dir) yield* registerHost(sql, change.project, change.host, "database")
            } else if (change.action === "remove") {
              if (!(yield* retireDatabaseHost(sql, change.project, change.host))) {
                const { message } = noRunTimeHost(change.project, change.host)
                return yield* new HostCommandRefused({ code: "not_found", message })
              }
            }
            return yield* reconciler.syncHost(change.host)
          }),
        )

      const decodeChange = Schema.decodeUnknownSync(HostChange)
      const context = yield* Effect.context<never>()
      const runFork = Effect.runForkWith(context)
      /** Answers a control request (a publish without a reply subject gets none). */
      const answer = (message: BusMessage, reply: Reply) => {
        if (message.reply !== undefined) message.respond(encodeJson(reply))
      }
      /** `isAnswering`: the fleet's one answering member (the queue group), not every isolate's copy. */
      const onChange = (
        handle: (change: HostChange, message: BusMessage) => Effect.Effect<unknown, unknown>,
        isAnswering = false,
      ) =>
      (message: BusMessage) => {
        try {
          const change = decodeChange(JSON.parse(decodeText(message.data)))
          runFork(
            handle(change, message).pipe(
              Effect.catchCause((cause) => Effect.logError("host change failed", loggable(change), cause)),
            ),
          )
        } catch (e) {
          runFork(Effect.logWarning("ignored bad control message", String(e)))
          if (!isAnswering) return
          answer(message, {
            ok: false,
            error: replyError("bad_request", `bad control message: ${String(e)}`),
          })
        }
      }
      // every isolate of every node: converge to the database on each notification
      yield* bus.subscribe(
        HOSTS_CONTROL_SUBJECT,
        onChange((change) =>
          Effect.gen(function* () {
            if (change.action === "changed" && (yield* isHost(change))) yield* syncHost(change.host)
          })
        ),
      )
      // one member of the fleet: persist a command, then tell every node (after the write)
      const notify = ({ project, host }: HostCommand) =>
        announceHostChange({ action: "changed", project, host }).pipe(
          Effect.provideService(Bus, bus),
          Effect.ignore,
        )
      /**
       * A host one of the project's folders serves on this node is the folder's to add and remove:
       * refused as the admin API refuses it (409), before anything is written or recorded. An add of
       * another project's folder host fails in applyHostChange (HostOwnedElsewhere).
       */
      const refuseFolderHost = (change: HostCommand) =>
        isFolderHostOf(reconciler.routing(), change.project, change.host)
          ? Effect.fail(
            new HostCommandRefused({ code: "conflict", message: hostFromFolder(change.host).message }),
          )
          : Effect.void
      /**
       * A signed command checked, then applied unless it, or a later one of its project for the host,
       * was applied already (two sent at once are applied as they arrive); a refused or failed change
       * records nothing.
       */
      const applySigned = (change: HostCommand) =>
        verifyHostCommand(change, reconciler.routing().projects.get(change.project)?.projectKey).pipe(
          Effect.tap(() => refuseFolderHost(change)),
          Effect.flatMap((at) =>
            isNewestHostCommand(sql, change.project, change.host, at).pipe(
              Effect.filterOrFail(
                (isNewest) => isNewest,
                () => new HostCommandRefused({ code: "conflict", message: REPLAYED }),
              ),
              // announced once written, whatever came of it; a refusal wrote nothing
              Effect.andThen(
                applyHostChange(change).pipe(
                  Effect.tap(() => recordHostCommand(sql, change.project, change.host, at)),
                  Effect.onExit((exit) => _isRefusal(exit) ? Effect.void : notify(change)),
                ),
              ),
            )
          ),
        )
      // a caller that asked (a NATS request) is told the outcome: the host served here, or why not
      yield* bus.subscribe(
        HOSTS_CONTROL_SUBJECT,
        onChange((change, message) =>
          Effect.gen(function* () {
            if (change.action === "changed") return
            if (!(yield* isHost(change))) {
              return answer(message, {
                ok: false,
                error: replyError("bad_request", `${change.host} is not a hostname`),
              })
            }
            const applied = yield* Effect.result(applySigned(change))
            if (applied._tag === "Success") {
              return answer(message, { ok: true, output: { host: change.host, served: applied.success } })
            }
            const failure = applied.failure
            if (failure._tag === "HostCommandRefused") {
              yield* Effect.logWarning("refused a host change", {
                ...loggable(change),
                reason: failure.message,
              })
              return answer(message, { ok: false, error: replyError(failure.code, failure.message) })
            }
            const reply = failure._tag === "BusUnavailable"
              ? replyError("overloaded", "the bus is unavailable; retry")
              : registrationError(failure) ?? replyError("overloaded", "the store failed; retry")
            answer(message, { ok: false, error: reply })
            return yield* Effect.fail(failure)
          }), true),
        { queue: HOSTS_COMMAND_QUEUE },
      )
      yield* bus.subscribe(RELOAD_CONTROL_SUBJECT, () => void runFork(reloadLogged))
      // notifications missed while cut off from NATS, or sent before the subscriptions above were up
      yield* Effect.forkScoped(keepHostsInSync({
        sql,
        routing: () => reconciler.routing(),
        hasProject: (project) => reconciler.hasProject(project),
        syncHost,
      }, bus.reconnects))

      yield* subscribed
      return { routing: () => reconciler.routing(), config: () => config, syncHost, reload }
    }),
  )

/**
 * Publishes on `<root>.ctl.hosts`: a `changed` notification after a write (every node converges
 * to hamlet_hosts), or a signed `add`/`remove` command (one node checks and persists it, then
 * notifies).
 */
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
