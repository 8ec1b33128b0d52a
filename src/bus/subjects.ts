/**
 * NATS subjects of the Hamlet contract (DESIGN.md §2). The subject is authoritative for
 * project, host and handler; a host token is the hostname with `.` → `_` (reversible,
 * since valid hostnames never contain `_`).
 */

/** `blog.example.com` → `blog_example_com`. */
export const hostToken = (host: string): string => host.replaceAll(".", "_")

/** `blog_example_com` → `blog.example.com`. */
export const hostFromToken = (token: string): string => token.replaceAll("_", ".")

export const requestSubject = (project: string, host: string, handler: string): string =>
  `hamlet.req.${project}.${hostToken(host)}.${handler}`

/** Everything addressed to one host of a project. */
export const hostRequestWildcard = (project: string, host: string): string =>
  `hamlet.req.${project}.${hostToken(host)}.*`

export const eventSubject = (project: string, host: string, eventType: string): string =>
  `hamlet.evt.${project}.${hostToken(host)}.${eventType}`

export const controlSubject = (topic: string): string => `hamlet.ctl.${topic}`

export interface RequestAddress {
  readonly project: string
  readonly host: string
  readonly handler: string
}

/** Parses `hamlet.req.<project>.<hostToken>.<Handler>`; undefined when it is not one. */
export const parseRequestSubject = (subject: string): RequestAddress | undefined => {
  const parts = subject.split(".")
  if (parts.length !== 5 || parts[0] !== "hamlet" || parts[1] !== "req") return undefined
  const [, , project, token, handler] = parts
  if (!project || !token || !handler) return undefined
  return { project, host: hostFromToken(token), handler }
}
