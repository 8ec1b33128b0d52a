/**
 * A throwaway project on disk for tests that need their own handlers: project.ts, api/*.ts,
 * host folders and a config.json listing it, in a temp dir removed by `remove()`. Sources
 * import Hamlet through `MOD` (the absolute path of mod.ts, quoted).
 */
import { mkdir, rm, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"

export const MOD = JSON.stringify(resolve("mod.ts"))

export interface TempProjectSpec {
  readonly name: string
  readonly projectTs: string
  /** Handler sources by handler name (api/<Name>.ts). */
  readonly api: Readonly<Record<string, string>>
  readonly hosts: ReadonlyArray<string>
}

export interface TempProject {
  readonly root: string
  readonly dir: string
  readonly configPath: string
  readonly remove: () => Promise<void>
}

export const writeTempProject = async (spec: TempProjectSpec): Promise<TempProject> => {
  const root = await Deno.makeTempDir({ prefix: `hamlet-${spec.name}-` })
  const dir = join(root, spec.name)
  await mkdir(join(dir, "api"), { recursive: true })
  for (const host of spec.hosts) await mkdir(join(dir, "hosts", host), { recursive: true })
  await writeFile(join(dir, "project.ts"), spec.projectTs)
  for (const [name, source] of Object.entries(spec.api)) {
    await writeFile(join(dir, "api", `${name}.ts`), source)
  }
  const configPath = join(root, "config.json")
  await writeFile(configPath, JSON.stringify({ projects: [`./${spec.name}`] }))
  return { root, dir, configPath, remove: () => rm(root, { recursive: true, force: true }) }
}
