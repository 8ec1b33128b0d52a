/**
 * The HTTP smoke path against the real Postgres store (a scratch database): submit, feed,
 * tenant isolation and the log. Skips locally when Postgres is absent; CI requires it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { verifyLog } from "../support/event-log.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { checkService } from "../support/services.ts"

const available = await checkService("postgres")

describe.skipIf(!available)("HTTP on the real Postgres store", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ store: "postgres" })
  })
  afterAll(() => server?.close())

  it("SubmitItem then GetFeed shows the item on its host and not on the other", async () => {
    const res = await server.call("blog.example.com", "/api/SubmitItem", {
      body: JSON.stringify({ title: "on postgres", tags: ["pg"] }),
    })
    expect(res.status).toBe(200)
    const { id } = await res.json()
    const feed = await (await server.call("blog.example.com", "/api/GetFeed")).json()
    expect(feed.items).toEqual([expect.objectContaining({ id, title: "on postgres", tags: ["pg"] })])
    const other = await (await server.call("news.example.com", "/api/GetFeed")).json()
    expect(other.items).toEqual([])
    expect((await server.call("news.example.com", `/api/GetItem?id=${id}`)).status).toBe(404)
  })

  it("concurrent writes on the pooled store still make a gapless, chained log", async () => {
    const results = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) =>
          server.call("news.example.com", "/api/SubmitItem", { body: JSON.stringify({ title: `pg ${i}` }) }),
      ),
    )
    expect(results.map((r) => r.status)).toEqual(Array(40).fill(200))
    await Promise.all(results.map((r) => r.body?.cancel()))
    expect(await verifyLog(server.sql, "news.example.com")).toEqual({
      count: 40,
      isGapless: true,
      brokenAt: undefined,
    })
  })
})
