/**
 * The cleanup jobs as a tenant sees them: soft-deleted rows past retention disappear,
 * newer ones stay, expired sessions go, and each purge is an event in the host's log —
 * the chain stays intact and the host keeps accepting writes afterwards.
 */
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { sessionExpiry, softDeleteCleanup } from "../../src/schedule/cleanup-jobs.ts"
import { readLog, verifyLog } from "../support/event-log.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

const BLOG = "blog.example.com"

describe("fleet-wide cleanup jobs", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  }, 60_000)
  afterAll(() => server?.close())

  const post = async (path: string, body: unknown) => {
    const res = await server.call(BLOG, path, { body: JSON.stringify(body) })
    expect(res.status).toBe(200)
    return await res.json()
  }
  const projects = () => [...server.supervisor.routing().projects.values()]

  it("purges soft-deleted rows past retention as an event in the host's log", async () => {
    const old = await post("/api/SubmitItem", { title: "old news" })
    const recent = await post("/api/SubmitItem", { title: "recent news" })
    await post("/api/DeleteItem", { id: old.id })
    await post("/api/DeleteItem", { id: recent.id })
    // the old item was deleted 31 days ago (horatio keeps soft-deleted items 30 days)
    await server.sql`update horatio.microblog_item set deleted_at = now() - interval '31 days'
                     where host = ${BLOG} and id = ${old.id}`

    const purged = await Effect.runPromise(softDeleteCleanup(server.sql, projects(), new Date()))
    expect(purged).toBe(1)
    const left = await server.sql`select id from horatio.microblog_item where host = ${BLOG}`
    expect(left.map((r) => r.id)).not.toContain(old.id)
    expect(left.map((r) => r.id)).toContain(recent.id)

    const log = await readLog(server.sql, BLOG)
    const purge = log.filter((e) => e.type === "HamletRowsPurged")
    expect(purge).toHaveLength(1)
    expect(purge[0].data).toMatchObject({ table: "microblog_item", ids: [old.id] })
    expect(await verifyLog(server.sql, BLOG)).toMatchObject({ isGapless: true, brokenAt: undefined })

    // the host's actor had a stale head: its next write still lands, gapless
    await post("/api/SubmitItem", { title: "after the purge" })
    expect(await verifyLog(server.sql, BLOG)).toMatchObject({ isGapless: true, brokenAt: undefined })
    expect(await Effect.runPromise(softDeleteCleanup(server.sql, projects(), new Date()))).toBe(0)
  })

  it("expires sessions past their time and records it in the host's log", async () => {
    await server.sql`insert into hamlet_sessions (host, id, expires_at) values
      (${BLOG}, 'expired-1', now() - interval '1 minute'),
      (${BLOG}, 'alive-1', now() + interval '1 hour')`
    const expired = await Effect.runPromise(sessionExpiry(server.sql, projects(), new Date()))
    expect(expired).toBe(1)
    const left = await server.sql`select id from hamlet_sessions where host = ${BLOG}`
    expect(left.map((r) => r.id)).toEqual(["alive-1"])
    const log = await readLog(server.sql, BLOG)
    expect(log.filter((e) => e.type === "HamletSessionsExpired").map((e) => e.data.ids)).toEqual([[
      "expired-1",
    ]])
    expect(await verifyLog(server.sql, BLOG)).toMatchObject({ isGapless: true, brokenAt: undefined })
  })
})
