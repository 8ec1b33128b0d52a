/**
 * NATS subjects of the Hamlet contract (DESIGN.md §2). The subject is authoritative for
 * project, host and handler; a host token is the hostname with `.` → `_` (reversible,
 * since valid hostnames never contain `_`).
 */

/**
 * The first token of every Hamlet subject: `hamlet` (the contract). HAMLET_SUBJECT_ROOT
 * changes it so independent fleets — or test runs — can share one NATS without meeting.
 */
export const SUBJECT_ROOT: string = (() => {
  const root = process.env.HAMLET_SUBJECT_ROOT ?? "hamlet"
  if (!/^[A-Za-z0-9_-]+$/.test(root)) {
    throw new Error(`HAMLET_SUBJECT_ROOT must be one subject token, got "${root}"`)
  }
  return root
})()

/** `blog.example.com` → `blog_example_com`. */
export const hostToken = (host: string): string => host.replaceAll(".", "_")

/** `blog_example_com` → `blog.example.com`. */
export const hostFromToken = (token: string): string => token.replaceAll("_", ".")

export const requestSubject = (project: string, host: string, handler: string): string =>
  `${SUBJECT_ROOT}.req.${project}.${hostToken(host)}.${handler}`

/** Everything addressed to one host of a project. */
export const hostRequestWildcard = (project: string, host: string): string =>
  `${SUBJECT_ROOT}.req.${project}.${hostToken(host)}.*`

export const eventSubject = (project: string, host: string, eventType: string): string =>
  `${SUBJECT_ROOT}.evt.${project}.${hostToken(host)}.${eventType}`

export const controlSubject = (topic: string): string => `${SUBJECT_ROOT}.ctl.${topic}`

export interface RequestAddress {
  readonly project: string
  readonly host: string
  readonly handler: string
}

/** Parses `<root>.req.<project>.<hostToken>.<Handler>`; undefined when it is not one. */
export const parseRequestSubject = (subject: string): RequestAddress | undefined => {
  const parts = subject.split(".")
  if (parts.length !== 5 || parts[0] !== SUBJECT_ROOT || parts[1] !== "req") return undefined
  const [, , project, token, handler] = parts
  if (!project || !token || !handler) return undefined
  return { project, host: hostFromToken(token), handler }
}
