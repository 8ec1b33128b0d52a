/**
 * A two-node fleet: two `deno task serve` processes on one NATS and one Postgres behave
 * as one server — every request handled once, writes to one host from both nodes all
 * land in one gapless seq order.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { Effect, Exit, Scope } from "effect"
import postgres from "postgres"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { signHostChange } from "../../src/admin/host-change-signature.ts"
import { controlSubject, requestSubject } from "../../src/bus/subjects.ts"
import { verifyLog } from "../support/event-log.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { requestWithHost } from "../support/http.ts"
import { type HamletNode, startNode } from "../support/node-process.ts"
import { checkService, NATS_URL } from "../support/services.ts"

const available = (await checkService("postgres")) && (await checkService("nats"))
/** Host commands on the control subject are signed with it. */
const HORATIO_KEY = "horatio-fleet-key-for-tests"

describe.skipIf(!available)("a two-node fleet on NATS and Postgres", () => {
  const scope = Effect.runSync(Scope.make())
  let databaseUrl: string
  let nodes: Array<HamletNode> = []
  let sql: postgres.Sql
  let nc: NatsConnection

  beforeAll(async () => {
    databaseUrl = await Effect.runPromise(Scope.provide(scratchPostgresUrl, scope))
    const env = { DATABASE_URL: databaseUrl, NATS_URL, HAMLET_PROJECT_KEY_HORATIO: HORATIO_KEY }
    // start one first so migrations and partitions exist, then the second joins
    nodes = [await startNode(env)]
    nodes.push(await startNode(env))
    sql = postgres(databaseUrl, { max: 2, onnotice: () => {} })
    nc = await connect({ servers: NATS_URL })
  }, 120_000)

  afterAll(async () => {
    if (process.env.SHOW_NODE_LOGS) { for (const n of nodes) console.log(n.logs()) }
    await nc?.close()
    await sql?.end()
    await Promise.all(nodes.map((n) => n.close()))
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  const submit = (node: HamletNode, title: string, headers: Record<string, string> = {}) =>
    requestWithHost(node.port, "blog.example.com", "/api/SubmitItem", {
      body: JSON.stringify({ title }),
      headers,
    })

  it("concurrent writes to one host through both nodes all land in one gapless seq order", async () => {
    const responses = await Promise.all(
      Array.from({ length: 120 }, (_, i) => submit(nodes[i % 2], `fleet ${i}`)),
    )
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200))
    const ids = await Promise.all(responses.map(async (r) => (await r.json()).id as string))
    const rows = await sql`select * from hamlet_events where host = 'blog.example.com' order by seq`
    expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1))
    const written = rows.filter((r) => r.type === "ItemSubmitted").map((r) => r.data.id)
    expect(new Set(written)).toEqual(new Set(ids))
    expect(written.length).toBe(ids.length)
    expect(await verifyLog(sql, "blog.example.com")).toMatchObject({ isGapless: true, brokenAt: undefined })
  })

  /** Both nodes' `hamlet_append_races_total`, once their actor isolates have reported (every second). */
  const races = async () => {
    await new Promise((resolve) => setTimeout(resolve, 1_200))
    const counts = await Promise.all(nodes.map(async (node) => {
      const text = await (await requestWithHost(node.port, "localhost", "/metrics")).text()
      return Number(/^hamlet_append_races_total (\d+)$/m.exec(text)?.[1])
    }))
    return counts[0] + counts[1]
  }

  it("nodes writing one host take turns under its write lock instead of racing", async () => {
    // a first wave makes both nodes meet (a lost race marks the host as written elsewhere)
    await Promise.all(Array.from({ length: 40 }, (_, i) => submit(nodes[i % 2], `meet ${i}`)))
    const before = await races()
    for (let wave = 0; wave < 8; wave++) {
      const responses = await Promise.all(
        Array.from({ length: 64 }, (_, i) => submit(nodes[i % 2], `turn ${i}`)),
      )
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200))
    }
    // racing, 512 writes from both nodes lose dozens of races (9 in 256 measured); taking turns, next to none
    const lost = await races() - before
    expect(lost).toBeLessThan(5)
    expect(await verifyLog(sql, "blog.example.com")).toMatchObject({ isGapless: true, brokenAt: undefined })
  })

  it("each request is handled by exactly one node (queue groups)", async () => {
    const before = await sql`select count(*)::int as n from hamlet_events where host = 'news.example.com'`
    await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) =>
          requestWithHost(nodes[i % 2].port, "news.example.com", "/api/SubmitItem", {
            body: JSON.stringify({ title: `once ${i}` }),
          }),
      ),
    )
    const after = await sql`select count(*)::int as n from hamlet_events where host = 'news.example.com'`
    expect(after[0].n - before[0].n).toBe(40)
  })

  it("a retried command with the same idempotency key writes once, across nodes", async () => {
    const key = `idem-${crypto.randomUUID()}`
    const subject = requestSubject("horatio", "blog.example.com", "SubmitItem")
    const send = () =>
      nc.request(
        subject,
        JSON.stringify({ id: crypto.randomUUID(), input: { title: "once" }, meta: { idempotencyKey: key } }),
        {
          timeout: 5_000,
        },
      ).then((m) => m.json<{ ok: boolean; output: { id: string } }>())
    const first = await send()
    const again = await Promise.all([send(), send(), send()])
    expect(first).toMatchObject({ ok: true })
    for (const r of again) expect(r).toEqual(first)
    const rows = await sql`select count(*)::int as n from hamlet_events
      where host = 'blog.example.com' and meta->>'idempotencyKey' = ${key}`
    expect(rows[0].n).toBe(1)
  })

  it("concurrent first sends with one idempotency key write once and all get the same reply", async () => {
    const key = `idem-${crypto.randomUUID()}`
    const subject = requestSubject("horatio", "blog.example.com", "SubmitItem")
    // several land in one host batch on one node, others race from the other node
    const replies = await Promise.all(Array.from({ length: 6 }, () =>
      nc.request(
        subject,
        JSON.stringify({ id: crypto.randomUUID(), input: { title: "burst" }, meta: { idempotencyKey: key } }),
        { timeout: 5_000 },
      ).then((m) => m.json<{ ok: boolean; output: { id: string } }>())))
    expect(replies[0]).toMatchObject({ ok: true })
    for (const r of replies) expect(r).toEqual(replies[0])
    const rows = await sql`select count(*)::int as n from hamlet_events
      where host = 'blog.example.com' and meta->>'idempotencyKey' = ${key}`
    expect(rows[0].n).toBe(1)
  })

  it("a host added or removed on the control subject is served, then refused, by every node", async () => {
    const host = `t${Date.now().toString(36)}.fleet.test`
    const feed = (node: HamletNode) => requestWithHost(node.port, host, "/api/GetFeed")
    expect((await feed(nodes[0])).status).toBe(404)
    nc.publish(
      controlSubject("hosts"),
      JSON.stringify(signHostChange({ action: "add", project: "horatio", host }, HORATIO_KEY)),
    )
    for (const node of nodes) {
      const deadline = Date.now() + 10_000
      while ((await feed(node)).status !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50))
      }
      expect((await feed(node)).status).toBe(200)
    }
    const partitions = await sql`select partition_name from hamlet_hosts where host = ${host}`
    expect(partitions).toHaveLength(1)
    nc.publish(
      controlSubject("hosts"),
      JSON.stringify(signHostChange({ action: "remove", project: "horatio", host }, HORATIO_KEY)),
    )
    for (const node of nodes) {
      const deadline = Date.now() + 10_000
      while ((await feed(node)).status !== 404 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50))
      }
      expect((await feed(node)).status).toBe(404)
    }
  })
})
