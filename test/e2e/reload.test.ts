/**
 * Hot reload: adding or removing a host folder (or editing config.json) swaps the routing
 * table without a restart, and requests to other hosts keep succeeding throughout.
 */
import { Effect } from "effect"
import { mkdir, rm, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestServer, type TestServer } from "../support/server.ts"

const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A one-handler project written to `dir`, importing Hamlet by absolute path. */
const writeProject = async (dir: string, name: string) => {
  const mod = resolve("mod.ts")
  await mkdir(join(dir, "api"), { recursive: true })
  await mkdir(join(dir, "hosts", "first.reload.test"), { recursive: true })
  await writeFile(
    join(dir, "project.ts"),
    `import { defineProject } from ${
      JSON.stringify(mod)
    }\nexport default defineProject({ name: "${name}" })\n`,
  )
  await writeFile(
    join(dir, "api", "Ping.ts"),
    `import { Effect, Schema } from "effect"
import { defineQuery } from ${JSON.stringify(mod)}
export default defineQuery({
  name: "Ping", input: Schema.Struct({}), output: Schema.Struct({ host: Schema.String }),
  handle: (_i, ctx) => Effect.succeed({ host: ctx.host }),
})
`,
  )
}

describe("hot reload of hosts and config", () => {
  let server: TestServer
  let root: string

  beforeAll(async () => {
    root = await Deno.makeTempDir({ prefix: "hamlet-reload-" })
    await writeProject(join(root, "reloady"), "reloady")
    await writeFile(join(root, "config.json"), JSON.stringify({ projects: ["./reloady"] }))
    server = await startTestServer({ configPath: join(root, "config.json") })
  })
  afterAll(async () => {
    await server?.close()
    await rm(root, { recursive: true, force: true })
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

    const secondDir = join(root, "reloady", "hosts", "second.reload.test")
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

  it("a broken config.json is refused and the previous routing kept", async () => {
    await writeFile(join(root, "config.json"), "{ not json")
    const exit = await Effect.runPromiseExit(server.supervisor.reload)
    expect(exit._tag).toBe("Failure")
    expect(String(exit._tag === "Failure" ? exit.cause : "")).toContain("config is not JSON")
    expect(await ping("first.reload.test")).toBe(200)
    await writeFile(join(root, "config.json"), JSON.stringify({ projects: ["./reloady"] }))
    await Effect.runPromise(server.supervisor.reload)
    expect(await ping("first.reload.test")).toBe(200)
  })
})
