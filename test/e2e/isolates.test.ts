/**
 * A node split in two isolates (src/node-isolates.ts): HTTP ingress in the main isolate,
 * host actors in a worker, meeting on NATS. It serves reads and writes, reports the worker's
 * host actors in /metrics, and on SIGTERM answers what it accepted and exits 0. With
 * HAMLET_ISOLATES=1 the node stays in one isolate. A host added through the admin API is
 * served as soon as the API answers 201, and hosts added and removed at once on two nodes
 * end with both nodes agreeing with hamlet_hosts. A host folder removed or made while requests
 * poll it is answered 200 or 404, never 503, though each isolate reloads on its own.
 */
import { Effect, Exit, Scope } from "effect"
import { mkdir, rm } from "node:fs/promises"
import { join } from "node:path"
import postgres from "postgres"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { scratchPostgresUrl } from "../support/database.ts"
import { until } from "../support/eventually.ts"
import { requestWithHost } from "../support/http.ts"
import { type HamletNode, startNode } from "../support/node-process.ts"
import { checkService, NATS_URL } from "../support/services.ts"
import { MOD, writeTempProject } from "../support/temp-project.ts"

const available = (await checkService("postgres")) && (await checkService("nats"))
const HOST = "blog.example.com"
const ADMIN_KEY = "horatio-admin-key-for-tests"

describe.skipIf(!available)("a node in two isolates", () => {
  const scope = Effect.runSync(Scope.make())
  let env: Record<string, string>
  let sql: postgres.Sql
  const started: Array<HamletNode> = []

  beforeAll(async () => {
    const databaseUrl = await Effect.runPromise(Scope.provide(scratchPostgresUrl, scope))
    env = { DATABASE_URL: databaseUrl, NATS_URL, LOG_LEVEL: "Info" }
    sql = postgres(databaseUrl, { max: 2, onnotice: () => {} })
  }, 60_000)

  afterAll(async () => {
    await Promise.all(started.map((n) => n.close()))
    await sql?.end()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  const start = async (isolates: string, more: Record<string, string> = {}) => {
    const node = await startNode({ ...env, HAMLET_ISOLATES: isolates, ...more })
    started.push(node)
    return node
  }
  /** A node with project keys, so the admin API is open to them. */
  const startAdminNode = () => start("2", { HAMLET_CONFIG: "test/fixtures/admin/config.json" })
  const admin = (node: HamletNode, path: string, method: string, body?: unknown) =>
    requestWithHost(node.port, "localhost", path, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
  const feed = (node: HamletNode, host: string) =>
    requestWithHost(node.port, host, "/api/GetFeed").then(async (r) => {
      await r.body?.cancel()
      return r.status
    })
  const submit = (node: HamletNode, title: string) =>
    requestWithHost(node.port, HOST, "/api/SubmitItem", { body: JSON.stringify({ title }) })

  it("serves writes and reads, shows the worker's host actors, and drains on SIGTERM", async () => {
    const node = await start("2")
    expect(node.logs()).toContain("node split")
    const written = await Promise.all(["a", "b", "c"].map((t) => submit(node, `split ${t}`)))
    expect(written.map((r) => r.status)).toEqual([200, 200, 200])
    const ids = await Promise.all(written.map(async (r) => (await r.json()).id as string))
    const feed = await (await requestWithHost(node.port, HOST, "/api/GetFeed")).json()
    expect(feed.items.map((i: { id: string }) => i.id)).toEqual(expect.arrayContaining(ids))
    await until("the worker isolate to report its host actors", async () => {
      const metrics = await (await requestWithHost(node.port, "localhost", "/metrics")).text()
      return Number(/^hamlet_active_host_workers (\d+)$/m.exec(metrics)?.[1]) >= 1
    })

    // a burst, then SIGTERM while it is in flight: every accepted write is answered and stored
    const burst = Array.from(
      { length: 20 },
      (_, i) => submit(node, `burst ${i}`).then((r) => r.status, () => 0),
    )
    await new Promise((resolve) => setTimeout(resolve, 20))
    await node.close()
    const statuses = await Promise.all(burst)
    const acknowledged = statuses.filter((s) => s === 200).length
    expect(statuses.every((s) => s === 200 || s === 0 || s === 503)).toBe(true)
    const rows = await sql`select count(*)::int as n from hamlet_events
      where host = ${HOST} and data->>'title' like 'burst %'`
    expect(rows[0].n).toBeGreaterThanOrEqual(acknowledged)
    expect(node.exitCode()).toBe(0)
    expect(node.logs()).toContain("stopping: answering the requests taken, then exiting")
  }, 60_000)

  it("a host added through the admin API is served by the node as soon as it answers 201", async () => {
    const node = await startAdminNode()
    const suffix = Date.now().toString(36)
    const statuses: Array<number> = []
    for (let i = 0; i < 8; i++) {
      const host = `added${i}-${suffix}.isolates.test`
      const added = await admin(node, "/admin/projects/horatio/hosts", "POST", { host })
      expect(added.status).toBe(201)
      // at once, in parallel: the ingress routes the host only after the actor isolate serves it
      statuses.push(...await Promise.all(Array.from({ length: 10 }, () => feed(node, host))))
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([])
  }, 60_000)

  it(
    "an add and a remove of one host on two nodes at once end with both nodes agreeing with the database",
    async () => {
      const [a, b] = [await startAdminNode(), await startAdminNode()]
      const suffix = Date.now().toString(36)
      const disagreements: Array<string> = []
      for (let i = 0; i < 20; i++) {
        const host = `race${i}-${suffix}.isolates.test`
        expect((await admin(a, "/admin/projects/horatio/hosts", "POST", { host })).status).toBe(201)
        await until("both nodes to serve the new host", async () => (await feed(b, host)) === 200)
        await Promise.all([
          admin(a, "/admin/projects/horatio/hosts", "POST", { host }),
          admin(b, `/admin/projects/horatio/hosts/${host}`, "DELETE"),
        ])
        const rows = await sql`select removed_at is null as live from hamlet_hosts where host = ${host}`
        const expected = rows[0].live ? 200 : 404
        // each node follows the database within a bound; the state it settles on must be the database's
        const deadline = Date.now() + 5_000
        let seen = [await feed(a, host), await feed(b, host)]
        while (seen.some((s) => s !== expected) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50))
          seen = [await feed(a, host), await feed(b, host)]
        }
        if (seen.some((s) => s !== expected)) {
          disagreements.push(`${host}: database ${expected}, nodes ${seen}`)
        }
      }
      expect(disagreements).toEqual([])
    },
    180_000,
  )

  it("a host folder removed or made while it is polled answers 200 or 404, never 503", async () => {
    const temp = await writeTempProject({
      name: "folders",
      hosts: ["kept.folders.test", "gone.folders.test"],
      projectTs: `import { defineProject } from ${MOD}\nexport default defineProject({ name: "folders" })\n`,
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
    try {
      const node = await start("2", { HAMLET_CONFIG: temp.configPath })
      const ping = (host: string) =>
        requestWithHost(node.port, host, "/api/Ping").then(async (r) => {
          await r.body?.cancel()
          return r.status
        })
      /** Polls `host` with 4 callers until `last` is seen twice in a row; every status seen. */
      const pollUntil = async (host: string, last: number) => {
        const seen: Array<number> = []
        const caller = async () => {
          for (let settled = 0; settled < 2;) {
            const status = await ping(host)
            seen.push(status)
            settled = status === last ? settled + 1 : 0
          }
        }
        await Promise.race([
          Promise.all([caller(), caller(), caller(), caller()]),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`${host} never ${last}`)), 20_000)),
        ])
        return seen
      }
      expect(await ping("gone.folders.test")).toBe(200)
      const removing = pollUntil("gone.folders.test", 404)
      await new Promise((resolve) => setTimeout(resolve, 100))
      await rm(join(temp.dir, "hosts", "gone.folders.test"), { recursive: true })
      const whileRemoved = await removing
      expect(whileRemoved.filter((s) => s !== 200 && s !== 404)).toEqual([])

      const adding = pollUntil("made.folders.test", 200)
      await new Promise((resolve) => setTimeout(resolve, 100))
      await mkdir(join(temp.dir, "hosts", "made.folders.test"))
      const whileMade = await adding
      expect(whileMade.filter((s) => s !== 200 && s !== 404)).toEqual([])
      expect(await ping("kept.folders.test")).toBe(200)
    } finally {
      await temp.remove()
    }
  }, 60_000)

  it("stays in one isolate with HAMLET_ISOLATES=1", async () => {
    const node = await start("1")
    expect(node.logs()).not.toContain("node split")
    expect((await submit(node, "single")).status).toBe(200)
  }, 60_000)
})
