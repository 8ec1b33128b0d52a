/**
 * Tenants of one project never see each other's data, and concurrent writes to a host are
 * serialised into a gapless, hash-chained log — checked in SQL, as an auditor would.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { readLog, verifyLog } from "../support/event-log.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

const BLOG = "blog.example.com"
const NEWS = "news.example.com"

let server: TestServer

const _submit = async (host: string, title: string): Promise<string> => {
  const res = await server.call(host, "/api/SubmitItem", { body: JSON.stringify({ title }) })
  expect(res.status).toBe(200)
  return (await res.json()).id
}

const _feedIds = async (host: string): Promise<Array<string>> =>
  ((await (await server.call(host, "/api/GetFeed")).json()).items as Array<{ id: string }>).map((i) => i.id)

beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server?.close())

describe("tenant isolation", () => {
  it("a write on one host is invisible on another host of the same project", async () => {
    const id = await _submit(BLOG, "only on the blog")
    expect(await _feedIds(BLOG)).toContain(id)
    expect(await _feedIds(NEWS)).not.toContain(id)
    const byId = await server.call(NEWS, `/api/GetItem?id=${id}`)
    expect(byId.status).toBe(404)
    const comment = await server.call(NEWS, "/api/SubmitComment", {
      body: JSON.stringify({ itemId: id, text: "cross-tenant" }),
    })
    expect(comment.status).toBe(404)
  })

  it("each host's events land in its own partition of the log", async () => {
    const [{ n }] = await server.sql`select count(*)::int as n from hamlet_events where host = ${NEWS}`
    expect(n).toBe(0)
    const hosts = await server.sql`select distinct host from hamlet_events order by host`
    expect(hosts.map((r) => r.host)).toEqual([BLOG])
  })
})

describe("ordering of concurrent writes", () => {
  it("100 concurrent writes to one host get seqs 1..N, gapless, with a valid hash chain", async () => {
    const before = (await readLog(server.sql, BLOG)).length
    const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => _submit(BLOG, `concurrent ${i}`)))
    const log = await verifyLog(server.sql, BLOG)
    expect(log).toEqual({ count: before + 100, isGapless: true, brokenAt: undefined })
    const submitted = (await readLog(server.sql, BLOG))
      .filter((r) => r.type === "ItemSubmitted")
      .map((r) => String(r.data.id))
    for (const id of ids) expect(submitted.filter((s) => s === id)).toHaveLength(1)
    expect(new Set(ids).size).toBe(100)
  })

  it("concurrent writes to two hosts keep each host's seqs independent and gapless", async () => {
    const blogBefore = (await readLog(server.sql, BLOG)).length
    const newsBefore = (await readLog(server.sql, NEWS)).length
    const writes = Array.from({ length: 60 }, (_, i) => _submit(i % 2 === 0 ? BLOG : NEWS, `mixed ${i}`))
    const ids = await Promise.all(writes)
    const blog = await verifyLog(server.sql, BLOG)
    const news = await verifyLog(server.sql, NEWS)
    expect(blog).toEqual({ count: blogBefore + 30, isGapless: true, brokenAt: undefined })
    expect(news).toEqual({ count: newsBefore + 30, isGapless: true, brokenAt: undefined })
    const newsIds = (await readLog(server.sql, NEWS)).map((r) => String(r.data.id))
    expect(newsIds).toEqual(expect.arrayContaining(ids.filter((_, i) => i % 2 === 1)))
    expect(newsIds.filter((id) => ids.filter((_, i) => i % 2 === 0).includes(id))).toEqual([])
    // news had no items before, so its feed (limit 50) is exactly its 30 writes
    expect(new Set(await _feedIds(NEWS))).toEqual(new Set(newsIds))
  })
})
