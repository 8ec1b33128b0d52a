/**
 * Hot reload: adding or removing a host folder (or editing config.json) swaps the routing
 * table without a restart, and requests to other hosts keep succeeding throughout.
 */
import { Effect } from "effect"
import { mkdir, rename, rm, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { registerHost } from "../../src/store/event-log.ts"
import { until } from "../support/eventually.ts"
import { requestWithHost } from "../support/http.ts"
import { type HamletNode, startNode } from "../support/node-process.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { MOD, type TempProject, writeTempProject } from "../support/temp-project.ts"

/** A one-handler project; hosts come and go as folders under its hosts/. */
const project = () =>
  writeTempProject({
    name: "reloady",
    hosts: ["first.reload.test"],
    projectTs: `import { defineProject } from ${MOD}\nexport default defineProject({ name: "reloady" })\n`,
    api: {
      Ping: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
export default defineQuery({
  name: "Ping", input: Schema.Struct({}), output: Schema.Struct({ host: Schema.String }),
  handle: (_i, ctx) => Effect.succeed({ host: ctx.host }),
})
`,
    },
  })

describe("hot reload of hosts and config", () => {
  let server: TestServer
  let temp: TempProject

  beforeAll(async () => {
    temp = await project()
    server = await startTestServer({ configPath: temp.configPath })
  })
  afterAll(async () => {
    await server?.close()
    await temp?.remove()
  })

  const ping = async (host: string) => (await server.call(host, "/api/Ping")).status

  it("a new host folder is served, and a removed one refused, without dropping other requests", async () => {
    expect(await ping("first.reload.test")).toBe(200)
    expect(await ping("second.reload.test")).toBe(404)
    let stop = false
    const statuses: Array<number> = []
    const steady = (async () => {
      while (!stop) statuses.push(await ping("first.reload.test"))
    })()

    const secondDir = join(temp.dir, "hosts", "second.reload.test")
    await mkdir(secondDir, { recursive: true })
    await until("the new host to be served", async () => (await ping("second.reload.test")) === 200)
    const body = await (await server.call("second.reload.test", "/api/Ping")).json()
    expect(body).toEqual({ host: "second.reload.test" })

    await rm(secondDir, { recursive: true })
    await until("the removed host to be refused", async () => (await ping("second.reload.test")) === 404)
    stop = true
    await steady
    expect(statuses.length).toBeGreaterThan(10)
    expect(statuses.filter((s) => s !== 200)).toEqual([])
  })

  it("a host folder whose log another project owns is refused alone; the reload's other changes land", async () => {
    await Effect.runPromise(registerHost(server.sql, "elsewhere", "owned.reload.test", "database"))
    await mkdir(join(temp.dir, "hosts", "owned.reload.test"), { recursive: true })
    await mkdir(join(temp.dir, "hosts", "third.reload.test"), { recursive: true })
    try {
      await Effect.runPromise(server.supervisor.reload)
      expect(await ping("third.reload.test")).toBe(200)
      expect(await ping("owned.reload.test")).toBe(404)
      expect(await ping("first.reload.test")).toBe(200)
    } finally {
      await rm(join(temp.dir, "hosts", "owned.reload.test"), { recursive: true })
      await rm(join(temp.dir, "hosts", "third.reload.test"), { recursive: true })
    }
  })

  it("a project key changed in config.json takes effect at the reload", async () => {
    const hosts = (key: string) =>
      server.call("any.host", "/admin/projects/reloady/hosts", {
        headers: { authorization: `Bearer ${key}` },
      })
    const [oldKey, newKey] = ["old-key-0123456789abcdef", "new-key-0123456789abcdef"]
    const configWith = (key: string) =>
      JSON.stringify({ projects: ["./reloady"], projectKeys: { reloady: key } })
    try {
      await writeFile(temp.configPath, configWith(oldKey))
      await Effect.runPromise(server.supervisor.reload)
      expect((await hosts(oldKey)).status).toBe(200)
      await writeFile(temp.configPath, configWith(newKey))
      await Effect.runPromise(server.supervisor.reload)
      expect((await hosts(oldKey)).status).toBe(401)
      expect((await hosts(newKey)).status).toBe(200)
    } finally {
      await writeFile(temp.configPath, JSON.stringify({ projects: ["./reloady"] }))
      await Effect.runPromise(server.supervisor.reload)
    }
    // the project has no key now, so no key is valid: the one 401 an unknown caller gets (authorize.ts)
    expect((await hosts(newKey)).status).toBe(401)
  })

  it("keeps watching config.json replaced by a rename, and a hosts/ folder removed and made again", async () => {
    const tagged = async () =>
      (await server.call("first.reload.test", "/api/Ping")).headers.has("x-tenant-host")
    const renamed = `${temp.configPath}.new`
    await writeFile(renamed, JSON.stringify({ projects: ["./reloady"], tenantHostHeader: true }))
    await rename(renamed, temp.configPath)
    await until("the renamed config to apply", tagged)
    await writeFile(temp.configPath, JSON.stringify({ projects: ["./reloady"] })) // in place, after the rename
    await until("the edited config to apply", async () => !(await tagged()))

    const hosts = join(temp.dir, "hosts")
    await rm(hosts, { recursive: true })
    await until("the hosts to go", async () => (await ping("first.reload.test")) === 404)
    await mkdir(join(hosts, "first.reload.test"), { recursive: true })
    await until(
      "the remade folder's host to be served",
      async () => (await ping("first.reload.test")) === 200,
    )
    await mkdir(join(hosts, "fourth.reload.test"))
    await until(
      "a host added to the remade folder to be served",
      async () => (await ping("fourth.reload.test")) === 200,
    )
    await rm(join(hosts, "fourth.reload.test"), { recursive: true })
  })

  it("a broken config.json is refused and the previous routing kept", async () => {
    await writeFile(temp.configPath, "{ not json")
    const exit = await Effect.runPromiseExit(server.supervisor.reload)
    expect(exit._tag).toBe("Failure")
    expect(String(exit._tag === "Failure" ? exit.cause : "")).toContain("config is not JSON")
    expect(await ping("first.reload.test")).toBe(200)
    await writeFile(temp.configPath, JSON.stringify({ projects: ["./reloady"] }))
    await Effect.runPromise(server.supervisor.reload)
    expect(await ping("first.reload.test")).toBe(200)
  })
})

// a real process: Deno keeps a module that failed to load failed for its URL (vitest's own
// module loader does not, so in-process the bug would not show)
describe("reloading a project whose project.ts was broken", () => {
  let temp: TempProject
  let node: HamletNode | undefined
  afterAll(async () => {
    await node?.close()
    await temp?.remove()
  })

  it("loads it once the file is fixed, with no other change and no restart", async () => {
    temp = await project()
    const dir = join(dirname(temp.configPath), "later")
    await mkdir(join(dir, "hosts", "later.reload.test"), { recursive: true })
    const projectTs =
      `import { defineProject } from ${MOD}\nexport default defineProject({ name: "later" })\n`
    await writeFile(join(dir, "project.ts"), projectTs.replace("defineProject(", "defineProject(("))
    node = await startNode({
      HAMLET_CONFIG: temp.configPath,
      HAMLET_DATA: join(dirname(temp.configPath), ".data"),
      HAMLET_ISOLATES: "1",
      NATS_URL: "",
      DATABASE_URL: "",
    })
    const error = async () =>
      (await (await requestWithHost(node!.port, "later.reload.test", "/")).json()).error.message
    expect(await error()).toBe("unknown host later.reload.test")
    await writeFile(temp.configPath, JSON.stringify({ projects: ["./reloady", "./later"] }))
    await until("the reload to fail on the broken file", () => node!.logs().includes("cannot load"))
    // the fix alone reloads: config.json is left as it is
    await writeFile(join(dir, "project.ts"), projectTs)
    // routed to the project now (it has no index.html), no longer an unknown host
    await until("the fixed project to be served", async () => (await error()) === "no such path /")
  }, 60_000)
})
