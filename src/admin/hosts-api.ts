/**
 * Admin routes for a project's hosts and a host's admin keys, guarded by the project key:
 *   GET    /admin/projects/<project>/hosts            list the hosts this node serves
 *   POST   /admin/projects/<project>/hosts  {host}    add a host at run time (every node follows)
 *   DELETE /admin/projects/<project>/hosts/<host>     remove a run-time host (its log is kept)
 *
 * A change is written to hamlet_hosts first, then this node converges to it (in a split node,
 * its actor isolate first: 201 means this node serves the host), then every node is told
 * (`changed` on `<root>.ctl.hosts`) and converges to the database asynchronously.
 *   GET    /admin/hosts/<host>/keys                   list the host's admin keys
 *   POST   /admin/hosts/<host>/keys                   mint a host admin key (shown once)
 *   DELETE /admin/hosts/<host>/keys/<keyId>           revoke one
 */
import { Effect } from "effect"
import { announceHostChange, retireDatabaseHost, type Supervisor } from "../actors/supervisor.ts"
import { Bus } from "../bus/bus.ts"
import {
  hostFromFolder,
  hostOfAnotherProject,
  noRunTimeHost,
  registrationError,
  replyError,
} from "../errors.ts"
import { bodyReadFailure, readBodyText } from "../ingress/body.ts"
import { isAscii, normaliseHost } from "../ingress/host.ts"
import { errorResponse, jsonResponse, methodNotAllowed } from "../ingress/responses.ts"
import { isFolderHostOf, type RoutingTable } from "../ingress/routing.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { type DatabaseError, query, type Sql } from "../store/database.ts"
import { registerHost } from "../store/event-log.ts"
import { authorizeProject, notFound, refuseBeforeLookup } from "./authorize.ts"
import { createHostKey, listHostKeys, revokeHostKey } from "./host-keys.ts"

export interface HostsApiDeps {
  readonly sql: Sql
  readonly bus: Bus["Service"]
  readonly routing: () => RoutingTable
  readonly syncHost: Supervisor["Service"]["syncHost"]
  readonly ownerOf: (host: string) => Promise<LoadedProject | undefined>
  readonly run: <A>(effect: Effect.Effect<A, DatabaseError>) => Promise<A>
}

const PROJECT_HOSTS = /^\/admin\/projects\/([a-z0-9-]+)\/hosts\/?$/
const PROJECT_HOST = /^\/admin\/projects\/([a-z0-9-]+)\/hosts\/([^/]+)\/?$/
const HOST_KEYS = /^\/admin\/hosts\/([^/]+)\/keys\/?$/
const HOST_KEY = /^\/admin\/hosts\/([^/]+)\/keys\/([0-9a-f]{16})\/?$/

/** A host registration's body at most (`{"host": "…"}`; a hostname is at most 253 characters). */
const ADMIN_BODY_BYTES = 4 * 1024
const ADMIN_BODY_IDLE_MS = 10_000

export const badHost = (raw: string) =>
  errorResponse(replyError("bad_request", `${JSON.stringify(raw)} is not a hostname`))

/**
 * The normalised host of a path segment, or undefined when it is not exactly a hostname (no port,
 * no trailing dot); a name written in Unicode (`b%C3%BCcher.example`) stands for its punycode.
 */
export const hostSegment = (segment: string): string | undefined => {
  let decoded: string
  try {
    decoded = decodeURIComponent(segment)
  } catch {
    return undefined
  }
  const host = normaliseHost(decoded)
  if (!host) return undefined
  const isExact = isAscii(decoded) ? host === decoded.toLowerCase() : !/:|\.$/.test(decoded)
  return isExact ? host : undefined
}

const fromFolder = (host: string) => errorResponse(hostFromFolder(host))

/**
 * After a write to hamlet_hosts: converges this node to it, then tells every node — also when
 * converging here failed, since the write stands. True when this node serves the host.
 */
const followChange = async (deps: HostsApiDeps, project: string, host: string): Promise<boolean> => {
  try {
    return await Effect.runPromise(deps.syncHost(host))
  } finally {
    await deps.run(
      announceHostChange({ action: "changed", project, host }).pipe(
        Effect.provideService(Bus, deps.bus),
        Effect.ignore,
      ),
    )
  }
}

/** Handles the route, or returns undefined when the path is not one of these routes. */
export const hostsApi = async (
  deps: HostsApiDeps,
  request: Request,
  url: URL,
): Promise<Response | undefined> => {
  const projects = () => deps.routing().projects.values()
  const guard = (project: LoadedProject) => authorizeProject(request, project, projects())

  const projectRoute = PROJECT_HOSTS.exec(url.pathname) ?? PROJECT_HOST.exec(url.pathname)
  if (projectRoute) {
    const project = deps.routing().projects.get(projectRoute[1])
    if (!project) return notFound(request, projects(), `no project ${projectRoute[1]}`)
    const denied = await guard(project)
    if (denied) return denied
    if (projectRoute[2] === undefined) {
      if (request.method === "GET") {
        // what this node serves: its folders (which DELETE refuses), then live run-time rows
        const hosts = new Map<string, string>()
        for (const route of deps.routing().routes.values()) {
          if (route.project.name === project.name && route.dir) hosts.set(route.host, "directory")
        }
        const rows = await deps.run(query(() =>
          deps.sql`select host from hamlet_hosts
                   where project = ${project.name} and source = 'database' and removed_at is null`
        ))
        for (const row of rows) if (!hosts.has(String(row.host))) hosts.set(String(row.host), "database")
        const listed = [...hosts].sort(([a], [b]) => a.localeCompare(b)).map(([host, source]) => ({
          host,
          source,
        }))
        return jsonResponse(200, { hosts: listed })
      }
      if (request.method !== "POST") return methodNotAllowed(request.method, "GET, POST")
      let text: string
      try {
        // bounded like a handler's body: a hostname needs little room
        text = await readBodyText(request, ADMIN_BODY_BYTES, ADMIN_BODY_IDLE_MS)
      } catch (e) {
        return bodyReadFailure(e)
      }
      let body: { host?: unknown }
      try {
        body = JSON.parse(text)
      } catch {
        return errorResponse(replyError("bad_request", 'the body must be JSON: {"host": "…"}'))
      }
      const raw = typeof body?.host === "string" ? body.host : ""
      const host = normaliseHost(raw)
      if (!host) return badHost(raw)
      const owner = await deps.ownerOf(host)
      if (owner && owner.name !== project.name) return errorResponse(hostOfAnotherProject(host))
      if (deps.routing().routes.get(host)?.dir) return fromFolder(host)
      // registering refuses a host whose log another project owns, loaded or not; it makes the
      // row a live run-time (`database`) host, also over the row of a folder since removed
      const registered = await Effect.runPromise(
        Effect.result(registerHost(deps.sql, project.name, host, "database")),
      )
      if (registered._tag === "Failure") {
        const reply = registrationError(registered.failure)
        if (!reply) throw registered.failure
        return errorResponse(reply)
      }
      const isServed = await followChange(deps, project.name, host)
      if (isServed) return jsonResponse(201, { host, project: project.name })
      // registered (every node follows), but this node's actors did not confirm in time
      return jsonResponse(202, {
        host,
        project: project.name,
        message: `host ${host} is registered; this node does not serve it yet`,
      })
    }
    if (request.method !== "DELETE") return methodNotAllowed(request.method, "DELETE")
    const host = hostSegment(projectRoute[2])
    if (!host) return badHost(projectRoute[2])
    if (isFolderHostOf(deps.routing(), project.name, host)) return fromFolder(host)
    if (!(await deps.run(retireDatabaseHost(deps.sql, project.name, host)))) {
      return errorResponse(noRunTimeHost(project.name, host))
    }
    await followChange(deps, project.name, host)
    return jsonResponse(200, { host, removed: true })
  }

  const keyRoute = HOST_KEYS.exec(url.pathname) ?? HOST_KEY.exec(url.pathname)
  if (!keyRoute) return undefined
  const host = hostSegment(keyRoute[1])
  if (!host) return badHost(keyRoute[1])
  const refused = refuseBeforeLookup(request, projects(), false)
  if (refused) return refused
  const owner = await deps.ownerOf(host)
  if (!owner) return notFound(request, projects(), `unknown host ${host}`)
  const denied = await guard(owner)
  if (denied) return denied
  if (keyRoute[2] !== undefined) {
    if (request.method !== "DELETE") return methodNotAllowed(request.method, "DELETE")
    return (await deps.run(revokeHostKey(deps.sql, host, keyRoute[2])))
      ? jsonResponse(200, { keyId: keyRoute[2], revoked: true })
      : errorResponse(replyError("not_found", `no active key ${keyRoute[2]} for ${host}`))
  }
  if (request.method === "GET") {
    return jsonResponse(200, { keys: await deps.run(listHostKeys(deps.sql, host)) })
  }
  if (request.method !== "POST") return methodNotAllowed(request.method, "GET, POST")
  return jsonResponse(201, { host, ...(await deps.run(createHostKey(deps.sql, host))) })
}
