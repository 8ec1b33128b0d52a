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

/**
 * Whether one of `project`'s hosts/ folders serves `host` on this table: the folder's to add and
 * remove, not the admin API's nor a signed change's (another project's folder host is just not one
 * of the project's own).
 */
export const isFolderHostOf = (table: RoutingTable, project: string, host: string): boolean => {
  const route = table.routes.get(host)
  return route?.dir !== undefined && route.project.name === project
}

/** Two host folders of two projects claim one host: a config error the user must fix. */
export class HostConflict extends Error {
  constructor(readonly host: string, readonly projects: readonly [string, string]) {
    super(`host ${host} is claimed by two projects: ${projects[0]} and ${projects[1]}`)
  }
}

/** A host folder left unserved: its host was registered at run time by the project that owns its log. */
export interface FolderOverruled {
  readonly host: string
  /** The project whose hosts/ folder claims the host. */
  readonly folderProject: string
  /** The project that registered it, whose log it is (hamlet_hosts). */
  readonly owner: string
}

export interface BuiltRoutingTable extends RoutingTable {
  readonly overruled: ReadonlyArray<FolderOverruled>
}

/**
 * Builds a table from project folders plus hosts registered in the database.
 * Throws HostConflict when folders of two projects claim one host. A folder claiming a host
 * another project registered at run time is not served (listed in `overruled`): the host's log
 * is that project's and is never handed over, and the folder is no reason to stop the node.
 */
export const buildRoutingTable = (
  projects: ReadonlyArray<LoadedProject>,
  databaseHosts: ReadonlyArray<{ readonly host: string; readonly project: string }>,
  defaultProject: string | undefined,
): BuiltRoutingTable => {
  const routes = new Map<string, Route>()
  const overruled: Array<FolderOverruled> = []
  const byName = new Map(projects.map((p) => [p.name, p]))
  // a typo would switch the fallback off without a word: refuse the config instead
  if (defaultProject !== undefined && !byName.has(defaultProject)) {
    throw new Error(
      `defaultProject ${defaultProject} is not one of the projects served: ${[...byName.keys()].join(", ")}`,
    )
  }
  for (const project of projects) {
    for (const [host, dir] of project.hostDirs) {
      const existing = routes.get(host)
      if (existing) throw new HostConflict(host, [existing.project.name, project.name])
      routes.set(host, { host, project, dir })
    }
  }
  for (const { host, project } of databaseHosts) {
    const loaded = byName.get(project)
    if (!loaded) continue
    const existing = routes.get(host)
    // a database row names the host's owner (hamlet_hosts.project never changes): it wins over a folder
    if (existing && existing.project.name !== project) {
      overruled.push({ host, folderProject: existing.project.name, owner: project })
    }
    // the owner's own folder keeps serving its static files
    if (existing?.project.name !== project) routes.set(host, { host, project: loaded, dir: undefined })
  }
  return { ...tableFromRoutes(routes, projects, defaultProject), overruled }
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
