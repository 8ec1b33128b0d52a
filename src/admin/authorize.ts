/**
 * Who may use a project's admin operations: the caller presenting that project's key
 * (or, for one host, one of the host's unrevoked admin keys). Without a valid key, every
 * refusal is one and the same 401 — whether the host or project exists, or has a key, is
 * not told; a caller with a valid key learns more: 403 for another project's key or for a
 * project without a key (its operations disabled, never open), 404 for what does not exist.
 */
import { Effect } from "effect"
import { replyError } from "../errors.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { errorResponse, unauthorizedResponse } from "../ingress/responses.ts"
import type { Sql } from "../store/database.ts"
import { isHostKey, isHostKeyShaped } from "./host-keys.ts"
import { bearerToken, isProjectKey } from "./project-key.ts"

export const forbidden = (message: string): Response =>
  errorResponse(replyError("unauthorized", message), 403)

/** The one refusal for a caller without a valid key: alike for every host, project and route. */
export const keyRequired = (): Response =>
  unauthorizedResponse("a valid key is required (Authorization: Bearer <key>)", "hamlet-admin")

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
  const token = bearerToken(request.headers.get("authorization"))
  if (token === undefined) return keyRequired()
  let isOwner = false
  let isOtherProject = false
  for (const project of projects) {
    if (!project.projectKey) continue
    const matches = isProjectKey(token, project.projectKey)
    if (project.name === owner.name) isOwner ||= matches
    else isOtherProject ||= matches
  }
  const isAccepted = !isOwner && acceptToken !== undefined && await acceptToken(token)
  // host keys are minted with the project key: one left from before its key went opens nothing
  if (!owner.projectKey) {
    return isOtherProject || isAccepted
      ? forbidden(`admin operations of project ${owner.name} are disabled: it has no project key`)
      : keyRequired()
  }
  if (isOwner || isAccepted) return undefined
  if (isOtherProject) return forbidden(`that key belongs to another project, not ${owner.name}`)
  return keyRequired()
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
  carriesProjectKey(request, projects) ? errorResponse(replyError("not_found", message)) : keyRequired()

/**
 * The one 401, at once, for a caller presenting no key that could open a host's operations — none,
 * or neither a project's key nor (where `hostKeys`) one shaped as a host's: answered before the
 * host is looked up, it takes the same time whether the host exists or not.
 */
export const refuseBeforeLookup = (
  request: Request,
  projects: Iterable<LoadedProject>,
  hostKeys: boolean,
): Response | undefined => {
  const token = bearerToken(request.headers.get("authorization"))
  if (token === undefined) return keyRequired()
  if (hostKeys && isHostKeyShaped(token)) return undefined
  return carriesProjectKey(request, projects) ? undefined : keyRequired()
}

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
  const refused = refuseBeforeLookup(request, deps.projects(), true)
  if (refused) return refused
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
