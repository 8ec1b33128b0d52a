/**
 * Idle host actors are passivated: after `limits.idleMs` without commands the host's
 * worker (mailbox + fiber) stops — visible as `hamlet_active_host_workers` in /metrics —
 * and the next command brings it back without anyone noticing.
 */
import { mkdir, rm, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestServer, type TestServer } from "../support/server.ts"

const HOSTS = ["one.idle.test", "two.idle.test"]

const writeProject = async (dir: string) => {
  const mod = JSON.stringify(resolve("mod.ts"))
  await mkdir(join(dir, "api"), { recursive: true })
  for (const host of HOSTS) await mkdir(join(dir, "hosts", host), { recursive: true })
  await writeFile(
    join(dir, "project.ts"),
    `import { Schema } from "effect"
import { defineEvent, defineProject } from ${mod}
export const Noted = defineEvent("Noted", Schema.Struct({ text: Schema.String }), () => "notes")
export default defineProject({ name: "idler", events: [Noted], limits: { idleMs: 1000 } })
`,
  )
  await writeFile(
    join(dir, "api", "Note.ts"),
    `import { Effect, Schema } from "effect"
import { defineCommand } from ${mod}
import { Noted } from "../project.ts"
export default defineCommand({
  name: "Note", input: Schema.Struct({ text: Schema.String }), output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) => ctx.emit(Noted, input).pipe(Effect.as({ ok: true })),
})
`,
  )
}

describe("passivation of idle host actors", () => {
  let server: TestServer
  let root: string
  beforeAll(async () => {
    root = await Deno.makeTempDir({ prefix: "hamlet-idle-" })
    await writeProject(join(root, "idler"))
    await writeFile(join(root, "config.json"), JSON.stringify({ projects: ["./idler"] }))
    server = await startTestServer({ configPath: join(root, "config.json") })
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await rm(root, { recursive: true, force: true })
  })

  const activeWorkers = async () => {
    const text = await (await server.call("localhost", "/metrics")).text()
    return Number(/^hamlet_active_host_workers (\d+)$/m.exec(text)?.[1])
  }
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 10_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  const note = async (host: string, text: string) =>
    (await server.call(host, "/api/Note", { body: JSON.stringify({ text }) })).status

  it("stops an idle host's worker and restarts it on the next command", async () => {
    expect(await activeWorkers()).toBe(0)
    expect(await note(HOSTS[0], "first")).toBe(200)
    expect(await note(HOSTS[1], "first")).toBe(200)
    expect(await activeWorkers()).toBe(2)
    await until("both workers to passivate", async () => (await activeWorkers()) === 0)
    expect(await note(HOSTS[0], "again")).toBe(200)
    expect(await activeWorkers()).toBe(1)
    const rows = await server.sql`select seq from hamlet_events where host = ${HOSTS[0]} order by seq`
    expect(rows.map((r) => Number(r.seq))).toEqual([1, 2])
  })
})
