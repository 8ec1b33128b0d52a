/**
 * The routing table: normalised host → the project that serves it (and the host's folder
 * of static files, when it has one). Immutable; a reload builds a new table and swaps it
 * atomically, so a request sees one table from start to end.
 */
import type { LoadedProject } from "../projects/loader.ts"

export interface Route {
  readonly host: string
  readonly project: LoadedProject
  /** Static files; undefined for hosts added through the database. */
  readonly dir: string | undefined
}

export interface RoutingTable {
  readonly routes: ReadonlyMap<string, Route>
  /** Opt-in fallback for unknown hosts (config.json `defaultProject`). */
  readonly fallback: Route | undefined
  readonly projects: ReadonlyMap<string, LoadedProject>
}

export class HostConflict extends Error {
  constructor(readonly host: string, readonly projects: readonly [string, string]) {
    super(`host ${host} is claimed by two projects: ${projects[0]} and ${projects[1]}`)
  }
}

/**
 * Builds a table from project folders plus hosts registered in the database.
 * Throws HostConflict when two projects claim one host.
 */
export const buildRoutingTable = (
  projects: ReadonlyArray<LoadedProject>,
  databaseHosts: ReadonlyArray<{ readonly host: string; readonly project: string }>,
  defaultProject: string | undefined,
): RoutingTable => {
  const routes = new Map<string, Route>()
  const byName = new Map(projects.map((p) => [p.name, p]))
  // a typo would switch the fallback off without a word: refuse the config instead
  if (defaultProject !== undefined && !byName.has(defaultProject)) {
    throw new Error(
      `defaultProject ${defaultProject} is not one of the projects served: ${[...byName.keys()].join(", ")}`,
    )
  }
  const claim = (host: string, project: LoadedProject, dir: string | undefined) => {
    const existing = routes.get(host)
    if (existing && existing.project.name !== project.name) {
      throw new HostConflict(host, [existing.project.name, project.name])
    }
    if (!existing || dir) routes.set(host, { host, project, dir })
  }
  for (const project of projects) {
    for (const [host, dir] of project.hostDirs) claim(host, project, dir)
  }
  for (const { host, project } of databaseHosts) {
    const loaded = byName.get(project)
    if (loaded) claim(host, loaded, undefined)
  }
  return tableFromRoutes(routes, projects, defaultProject)
}

/** A table over ready-made routes; the fallback is the default project's first host. */
export const tableFromRoutes = (
  routes: ReadonlyMap<string, Route>,
  projects: ReadonlyArray<LoadedProject>,
  defaultProject: string | undefined,
): RoutingTable => {
  const fallback = defaultProject
    ? [...routes.values()].filter((r) => r.project.name === defaultProject)
      .sort((a, b) => a.host.localeCompare(b.host))[0]
    : undefined
  return { routes, fallback, projects: new Map(projects.map((p) => [p.name, p])) }
}

export const resolveRoute = (table: RoutingTable, host: string): Route | undefined =>
  table.routes.get(host) ?? table.fallback
