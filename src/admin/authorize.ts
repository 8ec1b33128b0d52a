/**
 * Who may use a project's admin operations: the caller presenting that project's key
 * (or, for one host, one of the host's unrevoked admin keys). A project without a key has
 * them disabled (403), never open; another project's key gets 403; no or a wrong key 401.
 */
import { Effect } from "effect"
import { replyError } from "../errors.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { errorResponse, unauthorizedResponse } from "../ingress/responses.ts"
import type { Sql } from "../store/database.ts"
import { isHostKey } from "./host-keys.ts"
import { bearerToken, isProjectKey } from "./project-key.ts"

export const unauthorized = (message: string): Response => unauthorizedResponse(message, "hamlet-admin")

export const forbidden = (message: string): Response =>
  errorResponse(replyError("unauthorized", message), 403)

/**
 * undefined when `request` carries `owner`'s key (or `acceptToken` accepts the token);
 * otherwise the error response to send. Every project's key is compared, so the time
 * taken says nothing about which one matched.
 */
export const authorizeProject = async (
  request: Request,
  owner: LoadedProject,
  projects: Iterable<LoadedProject>,
  acceptToken?: (token: string) => Promise<boolean>,
): Promise<Response | undefined> => {
  // host keys are minted with the project key, so a project without one has none either
  if (!owner.projectKey) {
    return forbidden(`admin operations of project ${owner.name} are disabled: it has no project key`)
  }
  const token = bearerToken(request.headers.get("authorization"))
  if (token === undefined) return unauthorized("a key is required (Authorization: Bearer <key>)")
  if (acceptToken && await acceptToken(token)) return undefined
  let isOwner = false
  let isOtherProject = false
  for (const project of projects) {
    if (!project.projectKey) continue
    const matches = isProjectKey(token, project.projectKey)
    if (project.name === owner.name) isOwner ||= matches
    else isOtherProject ||= matches
  }
  if (isOwner) return undefined
  if (isOtherProject) return forbidden(`that key belongs to another project, not ${owner.name}`)
  return unauthorized("the key is not valid")
}

/** Whether `request` carries one of `projects`' keys (every key compared: the time taken says nothing). */
const carriesProjectKey = (request: Request, projects: Iterable<LoadedProject>): boolean => {
  const token = bearerToken(request.headers.get("authorization"))
  let matches = false
  for (const project of projects) {
    if (project.projectKey && isProjectKey(token ?? "", project.projectKey)) matches = true
  }
  return token !== undefined && matches
}

/**
 * A host, project or route that does not exist: 404 to a holder of some project's key, 401 to
 * anyone else, as for one that exists — which hosts and projects exist is not told to whoever asks.
 */
export const notFound = (request: Request, projects: Iterable<LoadedProject>, message: string): Response =>
  carriesProjectKey(request, projects)
    ? errorResponse(replyError("not_found", message))
    : unauthorized("a valid key is required (Authorization: Bearer <key>)")

/** What deciding on a host's admin operations needs. */
export interface HostAccessDeps {
  readonly sql: Sql
  /** The project that owns `host`'s log, if any (routing table, then hamlet_hosts). */
  readonly ownerOf: (host: string) => Promise<LoadedProject | undefined>
  /** Every loaded project (to tell another project's key from no key at all). */
  readonly projects: () => Iterable<LoadedProject>
}

/**
 * The project owning `host` when `request` may administer the host — it carries that project's
 * key or one of the host's unrevoked admin keys — otherwise the error response to send.
 */
export const authorizeHost = async (
  deps: HostAccessDeps,
  request: Request,
  host: string,
): Promise<LoadedProject | Response> => {
  const owner = await deps.ownerOf(host)
  if (!owner) return notFound(request, deps.projects(), `unknown host ${host}`)
  const denied = await authorizeProject(
    request,
    owner,
    deps.projects(),
    (token) => Effect.runPromise(isHostKey(deps.sql, host, token).pipe(Effect.orElseSucceed(() => false))),
  )
  return denied ?? owner
}
