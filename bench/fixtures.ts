/**
 * What a run needs around the server: scratch Postgres databases (`hamlet_bench_<x>`,
 * always dropped), temp HAMLET_DATA dirs, and a temp config whose project serves N hosts
 * as host directories — re-exporting the real projects/horatio code, so nothing under
 * projects/ is written.
 */
import postgres from "postgres"
import { partitionName } from "../src/store/event-log.ts"
import { join } from "node:path"
import { pathToFileURL } from "node:url"

const root = new URL("..", import.meta.url).pathname

/** Scratch databases on the server `adminUrl` points at; `dropAll` removes every one made. */
export class ScratchDatabases {
  readonly #made: Array<string> = []
  #counter = 0
  readonly #stamp = Date.now().toString(36)

  constructor(private readonly adminUrl: string) {}

  /** What every database this run makes is named with. */
  get prefix(): string {
    return `hamlet_bench_${this.#stamp}_`
  }

  async create(label: string): Promise<string> {
    const name = `${this.prefix}${label}_${this.#counter++}`.replace(/[^a-z0-9_]/g, "_")
    const admin = postgres(this.adminUrl, { max: 1, onnotice: () => {} })
    try {
      await admin.unsafe(`create database ${name}`)
    } finally {
      await admin.end()
    }
    this.#made.push(name)
    const url = new URL(this.adminUrl)
    url.pathname = `/${name}`
    return url.toString()
  }

  async dropAll(): Promise<void> {
    if (this.#made.length === 0) return
    const admin = postgres(this.adminUrl, { max: 1, onnotice: () => {} })
    try {
      for (const name of this.#made.splice(0)) {
        await admin.unsafe(`drop database if exists ${name} with (force)`).catch(() => {})
      }
    } finally {
      await admin.end()
    }
  }
}

/** Hostnames of a scale run: `h0.bench.test` … */
export const benchHosts = (n: number): Array<string> =>
  Array.from({ length: n }, (_, i) => `h${i}.bench.test`)

/**
 * Writes `<dir>/config.json` listing one project folder that re-exports horatio's code and
 * holds `hosts` as host directories. Returns the config path.
 */
export const writeScaleConfig = async (dir: string, hosts: ReadonlyArray<string>): Promise<string> => {
  const project = join(dir, "horatio")
  await Deno.mkdir(join(project, "hosts"), { recursive: true })
  // re-exporting wrappers, not symlinks: Deno resolves a symlinked module's relative
  // imports from the link's location, and horatio imports ../../mod.ts
  const source = join(root, "projects/horatio")
  const reexport = (file: string) =>
    `export { default } from ${JSON.stringify(pathToFileURL(join(source, file)).href)}\n`
  await Deno.writeTextFile(join(project, "project.ts"), reexport("project.ts"))
  await Deno.mkdir(join(project, "api"))
  for await (const entry of Deno.readDir(join(source, "api"))) {
    if (entry.isFile && entry.name.endsWith(".ts")) {
      await Deno.writeTextFile(join(project, "api", entry.name), reexport(join("api", entry.name)))
    }
  }
  for (const host of hosts) await Deno.mkdir(join(project, "hosts", host))
  const configPath = join(dir, "config.json")
  await Deno.writeTextFile(configPath, JSON.stringify({ projects: ["./horatio"] }))
  return configPath
}

/** The real sample config (horatio: blog/news.example.com, othello: theatre.example.com). */
export const sampleConfigPath = join(root, "config.json")

/** A temp dir removed by `removeTemp`. */
export const makeTemp = (label: string): Promise<string> =>
  Deno.makeTempDir({ prefix: `hamlet-bench-${label}-` })

export const removeTemp = (dir: string): Promise<void> =>
  Deno.remove(dir, { recursive: true }).catch(() => {})

/**
 * Registers `hosts` straight in SQL (partitions + hamlet_hosts rows, 500 per transaction)
 * on an already-migrated database, as a server restarting with that many hosts would find
 * it. Much faster than first registration through a node, which takes one DDL transaction
 * per host; the scale run measures both.
 */
export const preRegisterHosts = async (url: string, project: string, hosts: ReadonlyArray<string>) => {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    for (let i = 0; i < hosts.length; i += 500) {
      const chunk = hosts.slice(i, i + 500)
      // partition names from the server's own partitionName, not a copy of its formula
      const pairs = chunk.map((h) => `('${h}', '${partitionName(h)}')`).join(",")
      await sql.unsafe(`do $$ declare r record; begin
        for r in select * from (values ${pairs}) as v(h, p) loop
          execute format('create table if not exists %I partition of hamlet_events for values in (%L)', r.p, r.h);
          insert into hamlet_hosts (host, project, source, partition_name) values (r.h, '${project}', 'directory', r.p)
            on conflict (host) do nothing;
        end loop; end $$`)
    }
  } finally {
    await sql.end()
  }
}
