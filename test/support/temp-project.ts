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

export interface NotesProjectOptions {
  readonly name: string
  readonly hosts: ReadonlyArray<string>
  /** The `Noted` projection, as source: `(e, db) => …` (`Effect` is imported). */
  readonly projection: string
  /** More declarations for project.ts (models the projection writes). */
  readonly declarations?: string
  /** Their model names, listed after `Note`. */
  readonly models?: ReadonlyArray<string>
}

/**
 * A notes project: a `note` model (id, text), a `Noted` event starting a stream per note, and
 * `AddNote` ({ id?, text }) emitting it — a fresh id unless one is given.
 */
export const notesProject = (options: NotesProjectOptions): TempProjectSpec => ({
  name: options.name,
  hosts: options.hosts,
  projectTs: `import { Effect, Schema } from "effect"
import { defineEvent, defineModel, defineProject, defineProjection } from ${MOD}
export const Note = defineModel("note", { id: Schema.String, text: Schema.String })
${options.declarations ?? ""}
export const Noted = defineEvent("Noted", Schema.Struct({ id: Schema.String, text: Schema.String }), (e) => e.id, {
  startsStream: true,
})
export default defineProject({
  name: ${JSON.stringify(options.name)},
  models: [${["Note", ...(options.models ?? [])].join(", ")}],
  events: [Noted],
  projections: [defineProjection(Noted, ${options.projection})],
})
`,
  api: {
    AddNote: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Noted } from "../project.ts"
export default defineCommand({
  name: "AddNote",
  input: Schema.Struct({ id: Schema.optional(Schema.String), text: Schema.String }),
  output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) =>
    ctx.emit(Noted, { id: input.id ?? crypto.randomUUID(), text: input.text }).pipe(Effect.as({ ok: true })),
})
`,
  },
})
