/**
 * Start-up configuration: config.json decoding names the bad field, project names follow
 * DNS-label rules, two projects' folders may not claim one host (a run-time host stays with its
 * project), and api/ files are named after their handlers.
 */
import { ConfigProvider, Duration, Effect, Exit, Redacted, Schema } from "effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { decodeConfig, loadConfig, ProjectName } from "../../src/config/config.ts"
import { buildRoutingTable, HostConflict } from "../../src/ingress/routing.ts"
import { type LoadedProject, loadProject } from "../../src/projects/loader.ts"
import { DEFAULT_LIMITS } from "../../src/projects/project.ts"
import { ServerConfig } from "../../src/server-config.ts"
import { startTestServer } from "../support/server.ts"
import { MOD, writeTempProject } from "../support/temp-project.ts"

/** The ConfigError message for `json`, or undefined when it decodes. */
const _configError = (json: unknown): string | undefined => {
  const exit = Effect.runSyncExit(decodeConfig("config.json", json))
  if (Exit.isSuccess(exit)) return undefined
  return String(exit.cause.reasons.map((r) => (r as { error?: { message?: string } }).error?.message))
}

describe("config.json decoding", () => {
  it("accepts the shipped config", () => {
    expect(_configError({ projects: ["./projects/horatio"], defaultProject: "horatio" })).toBeUndefined()
  })

  it.each([
    ["missing projects", {}, /\["projects"\]/],
    ["projects not an array", { projects: "./projects/horatio" }, /\["projects"\]/],
    ["an empty projects list", { projects: [] }, /\["projects"\]/],
    ["a bad defaultProject name", { projects: ["./p"], defaultProject: "Ab" }, /\["defaultProject"\]/],
    ["an excess property", { projects: ["./p"], colour: "red" }, /\["colour"\]/],
    ["a short project key", { projects: ["./p"], projectKeys: { horatio: "short" } }, /\["projectKeys"\]/],
    [
      "a project key no Bearer header can carry",
      { projects: ["./p"], projectKeys: { horatio: "correct horse battery staple" } },
      /printable ASCII[\s\S]*\["projectKeys"\]\["horatio"\]/,
    ],
  ])("rejects %s with a message naming the field", (_what, json, field) => {
    const message = _configError(json)
    expect(message).toBeDefined()
    expect(message).toMatch(field)
  })

  const dirs: Array<string> = []
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })

  it("loadConfig() fails at start on a bad file, naming the field, and on non-JSON", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hamlet-config-"))
    dirs.push(dir)
    await writeFile(join(dir, "bad.json"), JSON.stringify({ projects: ["./p"], defaultProject: "Ab" }))
    await writeFile(join(dir, "broken.json"), "{ projects: ")
    const bad = await Effect.runPromise(Effect.flip(loadConfig(join(dir, "bad.json"))))
    expect(bad.message).toMatch(/defaultProject/)
    const broken = await Effect.runPromise(Effect.flip(loadConfig(join(dir, "broken.json"))))
    expect(broken.message).toMatch(/not JSON/)
    await expect(startTestServer({ configPath: join(dir, "bad.json") })).rejects.toThrow(/defaultProject/)
  })

  it("loadConfig() resolves project folders relative to config.json", async () => {
    const loaded = await Effect.runPromise(loadConfig("./config.json"))
    expect(loaded.projectDirs).toEqual([resolve("projects/horatio"), resolve("projects/othello")])
  })
})

describe("ProjectName", () => {
  const isValid = (name: string) => Exit.isSuccess(Schema.decodeUnknownExit(ProjectName)(name))

  it.each(["abc", "a-b-c", "horatio", "a1b2", "x".repeat(32)])("accepts %j", (name) => {
    expect(isValid(name)).toBe(true)
  })

  it.each(["ab", "-abc", "a--b", "Abc", "abc-", "1abc", "a_bc", "a.bc", "", "x".repeat(33), "public"])(
    "rejects %j",
    (name) => {
      expect(isValid(name)).toBe(false)
    },
  )
})

const _project = (name: string, hosts: ReadonlyArray<string>): LoadedProject => ({
  name,
  dir: `/projects/${name}`,
  models: [],
  handlers: new Map(),
  projections: new Map(),
  events: undefined,
  limits: DEFAULT_LIMITS,
  hostDirs: new Map(hosts.map((h) => [h, `/projects/${name}/hosts/${h}`])),
  projectKey: undefined,
  schedules: [],
})

describe("routing table", () => {
  it("buildRoutingTable() maps each host to its project, with no fallback unless opted in", () => {
    const table = buildRoutingTable(
      [_project("alpha", ["a.example.com"]), _project("beta", ["b.example.com"])],
      [{ host: "c.example.com", project: "beta" }],
      undefined,
    )
    expect([...table.routes].map(([h, r]) => [h, r.project.name, r.dir !== undefined])).toEqual([
      ["a.example.com", "alpha", true],
      ["b.example.com", "beta", true],
      ["c.example.com", "beta", false],
    ])
    expect(table.fallback).toBeUndefined()
    const withFallback = buildRoutingTable([_project("alpha", ["a.example.com"])], [], "alpha")
    expect(withFallback.fallback?.host).toBe("a.example.com")
  })

  it("buildRoutingTable() refuses a defaultProject that names no project served", () => {
    expect(() => buildRoutingTable([_project("alpha", ["a.example.com"])], [], "alhpa")).toThrow(
      /defaultProject alhpa is not one of the projects served: alpha/,
    )
  })

  it("the cleanup period must be a duration of at least a second", async () => {
    const cleanupEvery = (value: string) =>
      Effect.runPromiseExit(
        Effect.map(ServerConfig, (c) => Duration.toMillis(c.cleanupEvery)).pipe(
          Effect.provideService(
            ConfigProvider.ConfigProvider,
            ConfigProvider.fromEnv({ env: { HAMLET_CLEANUP_EVERY: value } }),
          ),
        ),
      )
    for (const bad of ["0 seconds", "-5 seconds", "banana"]) {
      const exit = await cleanupEvery(bad)
      expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(/HAMLET_CLEANUP_EVERY/)
    }
    expect(await cleanupEvery("10 seconds")).toEqual(Exit.succeed(10_000))
  })

  it("the Postgres pool must be a whole number of connections from 1", async () => {
    const pgPool = (env: Record<string, string>) =>
      Effect.runPromiseExit(
        Effect.map(ServerConfig, (c) => c.pgPool).pipe(
          Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })),
        ),
      )
    for (const bad of ["0", "-3", "abc", "2.5"]) {
      const exit = await pgPool({ HAMLET_PG_POOL: bad })
      expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(/HAMLET_PG_POOL/)
    }
    expect(await pgPool({ HAMLET_PG_POOL: "4" })).toEqual(Exit.succeed(4))
    expect(await pgPool({})).toEqual(Exit.succeed(10))
  })

  it("buildRoutingTable() throws HostConflict naming the host and both projects", () => {
    const build = () =>
      buildRoutingTable(
        [_project("alpha", ["shared.example.com"]), _project("beta", ["shared.example.com"])],
        [],
        undefined,
      )
    expect(build).toThrow(HostConflict)
    expect(build).toThrow(/shared\.example\.com.*alpha.*beta/)
  })

  it("buildRoutingTable() gives a host registered at run time to its project, over another project's folder", () => {
    const table = buildRoutingTable(
      [_project("alpha", ["a.example.com", "b.example.com"]), _project("beta", ["c.example.com"])],
      [{ host: "a.example.com", project: "beta" }, { host: "c.example.com", project: "beta" }],
      undefined,
    )
    expect([...table.routes].map(([h, r]) => [h, r.project.name, r.dir !== undefined])).toEqual([
      ["a.example.com", "beta", false],
      ["b.example.com", "alpha", true],
      ["c.example.com", "beta", true],
    ])
    expect(table.overruled).toEqual([{ host: "a.example.com", folderProject: "alpha", owner: "beta" }])
  })

  it("the server refuses to start when two project folders claim one host", async () => {
    await expect(startTestServer({ configPath: "./test/fixtures/host-conflict/config.json" })).rejects
      .toThrow(/shared\.example\.com.*alpha.*beta/)
  })
})

describe("project loading", () => {
  it("loadProject() loads a sample project's handlers and host folders", async () => {
    const project = await Effect.runPromise(loadProject(resolve("projects/horatio"), undefined))
    expect(project.name).toBe("horatio")
    expect([...project.handlers.keys()].sort()).toEqual([
      "DeleteItem",
      "GetFeed",
      "GetItem",
      "SubmitComment",
      "SubmitItem",
    ])
    expect([...project.hostDirs.keys()].sort()).toEqual(["blog.example.com", "news.example.com"])
  })

  it("loadProject() rejects an api/ file not named after its handler", async () => {
    const error = await Effect.runPromise(
      Effect.flip(loadProject(resolve("test/fixtures/misnamed"), undefined)),
    )
    expect(error._tag).toBe("ProjectLoadError")
    expect(error.message).toMatch(/api\/GetThing\.ts.*GetOther/)
  })

  it("loadProject() rejects a handler declared twice in project.ts with a load error, not a defect", async () => {
    const temp = await writeTempProject({
      name: "twice",
      hosts: [],
      projectTs: `import { Effect, Schema } from "effect"
import { defineProject, defineQuery } from ${MOD}
const Ping = defineQuery({
  name: "Ping", input: Schema.Struct({}), output: Schema.Struct({}), handle: () => Effect.succeed({}),
})
export default defineProject({ name: "twice", handlers: [Ping, Ping] })
`,
      api: {},
    })
    try {
      const error = await Effect.runPromise(Effect.flip(loadProject(temp.dir, undefined)))
      expect(error._tag).toBe("ProjectLoadError")
      expect(error.message).toMatch(/handler Ping is declared twice/)
    } finally {
      await temp.remove()
    }
  })

  it("loadProject() takes the project key from its variable, and from config.json when that is unset or empty", async () => {
    const variable = "HAMLET_PROJECT_KEY_HORATIO"
    const keyOf = async () =>
      Redacted.value(
        (await Effect.runPromise(loadProject(resolve("projects/horatio"), "from-config-0123456789")))
          .projectKey!,
      )
    try {
      Deno.env.set(variable, "from-variable-0123456789")
      expect(await keyOf()).toBe("from-variable-0123456789")
      Deno.env.set(variable, "")
      expect(await keyOf()).toBe("from-config-0123456789")
    } finally {
      Deno.env.delete(variable)
    }
    expect(await keyOf()).toBe("from-config-0123456789")
  })

  it("loadProject() refuses a project key from its variable that no client could send, naming the variable only", async () => {
    const variable = "HAMLET_PROJECT_KEY_HORATIO"
    try {
      for (const key of ["a", "clé-secrète-0123456789", "with spaces 0123456789"]) {
        Deno.env.set(variable, key)
        const error = await Effect.runPromise(
          Effect.flip(loadProject(resolve("projects/horatio"), undefined)),
        )
        expect(error.message).toMatch(
          /HAMLET_PROJECT_KEY_HORATIO is not a usable project key: 16 or more printable ASCII/,
        )
        if (key.length > 1) expect(error.message).not.toContain(key)
      }
    } finally {
      Deno.env.delete(variable)
    }
  })

  it("loadProject() rejects a folder without project.ts", async () => {
    const error = await Effect.runPromise(Effect.flip(loadProject(resolve("test/fixtures"), undefined)))
    expect(error.message).toMatch(/no project\.ts/)
  })
})
