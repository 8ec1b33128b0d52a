/**
 * The admin HTTP API under `/admin/`. It is addressed by path, not by the Host header
 * (`/admin/hosts/<host>/…`): an auditor reaches any host's log through any name of the
 * server, and the project key decides. Routes: `GET /admin/hosts/<host>/events`, the
 * hosts and host-key routes of hosts-api.ts and the dead-letter routes of dead-letters-api.ts.
 */
import { Effect } from "effect"
import { Supervisor } from "../actors/supervisor.ts"
import { methodNotAllowed } from "../ingress/responses.ts"
import { Database } from "../store/database.ts"
import { hostOwner } from "../store/event-log.ts"
import { notFound } from "./authorize.ts"
import { deadLettersApi, type DeadLettersApiDeps } from "./dead-letters-api.ts"
import { hostEvents, type HostEventsDeps } from "./host-events.ts"
import { badHost, hostsApi, type HostsApiDeps, hostSegment } from "./hosts-api.ts"
import { Bus } from "../bus/bus.ts"

export type AdminHandler = (request: Request, url: URL) => Promise<Response>

const HOST_EVENTS = /^\/admin\/hosts\/([^/]+)\/events\/?$/

export const makeAdmin: Effect.Effect<AdminHandler, never, Supervisor | Database | Bus> = Effect.gen(
  function* () {
    const supervisor = yield* Supervisor
    const { sql } = yield* Database
    const bus = yield* Bus
    const context = yield* Effect.context<never>()
    const runPromise = Effect.runPromiseWith(context)
    const deps: HostEventsDeps = {
      sql,
      projects: () => supervisor.routing().projects.values(),
      ownerOf: async (host) => {
        const table = supervisor.routing()
        const routed = table.routes.get(host)
        if (routed) return routed.project
        // a host no longer routed may still have a log worth auditing
        const owner = await runPromise(hostOwner(sql, host).pipe(Effect.orElseSucceed(() => undefined)))
        return owner === undefined ? undefined : table.projects.get(owner)
      },
      log: (message, fields) => void runPromise(Effect.logInfo(message, fields)),
      logError: (message, fields) => void runPromise(Effect.logError(message, fields)),
    }
    const deadLettersDeps: DeadLettersApiDeps = { ...deps, bus, run: runPromise }
    const hostsDeps: HostsApiDeps = {
      sql,
      bus,
      routing: supervisor.routing,
      syncHost: supervisor.syncHost,
      ownerOf: deps.ownerOf,
      run: runPromise,
    }
    return async (request: Request, url: URL): Promise<Response> => {
      const handled = await hostsApi(hostsDeps, request, url) ??
        await deadLettersApi(deadLettersDeps, request, url)
      if (handled) return handled
      const match = HOST_EVENTS.exec(url.pathname)
      if (!match) return notFound(request, deps.projects(), `no admin route ${url.pathname}`)
      if (request.method !== "GET" && request.method !== "HEAD") {
        return methodNotAllowed(request.method, "GET, HEAD")
      }
      const host = hostSegment(match[1])
      if (!host) return badHost(match[1])
      return await hostEvents(deps, request, url, host)
    }
  },
)
