/**
 * Catching up with hamlet_hosts: a node that missed a `<root>.ctl.hosts` notification (cut off
 * from NATS when it was sent, or not yet subscribed while it started — core NATS delivery is
 * best-effort) would disagree with the fleet until the next change to that host. So every so
 * often, and whenever the bus reconnects, each isolate compares the run-time hosts' rows with its
 * routing and converges the hosts that differ, one by one, as a notification would.
 */
import { Clock, Duration, Effect } from "effect"
import { isValidHostname } from "../ingress/host.ts"
import type { RoutingTable } from "../ingress/routing.ts"
import { type DatabaseError, query, type Sql } from "../store/database.ts"

/** How often hamlet_hosts is compared with the routing, whatever the bus said. */
export const RESYNC_EVERY = Duration.seconds(30)
/** How often the bus' reconnections are looked at, to catch up as soon as it is back. */
const CONNECTION_CHECK_EVERY = Duration.seconds(1)

export interface ResyncDeps {
  readonly sql: Sql
  readonly routing: () => RoutingTable
  readonly hasProject: (project: string) => boolean
  readonly syncHost: (host: string) => Effect.Effect<unknown, unknown>
}

/** The run-time hosts whose live row and this isolate's routing disagree. */
export const hostsOutOfSync = (deps: ResyncDeps): Effect.Effect<ReadonlyArray<string>, DatabaseError> =>
  Effect.map(
    query(() =>
      deps.sql`select host, project from hamlet_hosts where source = 'database' and removed_at is null`
    ),
    (rows) => {
      const live = new Map(rows.map((r) => [String(r.host), String(r.project)]))
      const routes = deps.routing().routes
      const differing = new Set<string>()
      for (const [host, project] of live) {
        const route = routes.get(host)
        // a folder route wins over a row (and a project not loaded here serves nothing here)
        if (route?.dir || !deps.hasProject(project) || !isValidHostname(host)) continue
        if (route?.project.name !== project) differing.add(host)
      }
      for (const [host, route] of routes) if (!route.dir && !live.has(host)) differing.add(host)
      return [...differing]
    },
  )

/** Converges every host out of sync; a failure is logged and left to the next round. */
export const resyncHosts = (deps: ResyncDeps): Effect.Effect<void> =>
  hostsOutOfSync(deps).pipe(
    Effect.flatMap((hosts) =>
      hosts.length === 0 ? Effect.void : Effect.logInfo("catching up with hamlet_hosts", { hosts }).pipe(
        Effect.andThen(
          Effect.forEach(hosts, (host) => Effect.ignore(deps.syncHost(host)), { discard: true }),
        ),
      )
    ),
    Effect.catchCause((cause) => Effect.logWarning("catching up with hamlet_hosts failed", cause)),
  )

/**
 * Runs `resyncHosts` now, every RESYNC_EVERY, and as soon as the bus has come back from a loss
 * (`reconnects` moved: however short the loss, what it carried was missed); for as long as the
 * caller's fiber runs.
 */
export const keepHostsInSync = (deps: ResyncDeps, reconnects: Effect.Effect<number>): Effect.Effect<never> =>
  Effect.gen(function* () {
    let seen = yield* reconnects
    let nextAt = 0
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      const current = yield* reconnects
      if (current !== seen || now >= nextAt) {
        seen = current
        yield* resyncHosts(deps)
        nextAt = now + Duration.toMillis(RESYNC_EVERY)
      }
      yield* Effect.sleep(CONNECTION_CHECK_EVERY)
    }
  })
