/**
 * The hosts admin API: a project key adds and removes run-time hosts (served at once,
 * refused after removal, log kept), and mints, lists and revokes per-host admin keys that
 * are stored hashed. Other projects' keys and wrong keys are refused. `<root>.ctl.hosts`
 * commands (add, remove) signed with the project key are persisted (a remove of a host the project
 * has no run-time row for is not_found, as DELETE's 404); a `changed` notification makes the node
 * follow hamlet_hosts, and writes nothing.
 */
import { Effect } from "effect"
import { connect } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { announceHostChange, HOSTS_CONTROL_SUBJECT } from "../../src/actors/supervisor.ts"
import { signHostChange } from "../../src/admin/host-change-signature.ts"
import { Bus } from "../../src/bus/bus.ts"
import { registerHost } from "../../src/store/event-log.ts"
import { until } from "../support/eventually.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

const HORATIO_KEY = "horatio-admin-key-for-tests"
const OTHELLO_KEY = "othello-admin-key-for-tests"

describe("hosts admin API", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ configPath: "test/fixtures/admin/config.json" })
  }, 60_000)
  afterAll(() => server?.close())

  const admin = (path: string, key: string | undefined, init: { method?: string; body?: unknown } = {}) =>
    server.call("localhost", path, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      headers: key ? { authorization: `Bearer ${key}` } : {},
    })

  it("adds a host at run time, serves it, and removes it again while keeping its log", async () => {
    const host = "guest.horatio.test"
    expect((await server.call(host, "/api/GetFeed")).status).toBe(404)
    const added = await admin("/admin/projects/horatio/hosts", HORATIO_KEY, {
      body: { host: "Guest.Horatio.Test." },
    })
    expect(added.status).toBe(201)
    expect(await added.json()).toEqual({ host, project: "horatio" })
    const write = await server.call(host, "/api/SubmitItem", {
      body: JSON.stringify({ title: "hello guest" }),
    })
    expect(write.status).toBe(200)
    const list = await (await admin("/admin/projects/horatio/hosts", HORATIO_KEY)).json()
    expect(list.hosts).toContainEqual({ host, source: "database" })

    const removed = await admin(`/admin/projects/horatio/hosts/${host}`, HORATIO_KEY, { method: "DELETE" })
    expect(removed.status).toBe(200)
    expect((await server.call(host, "/api/GetFeed")).status).toBe(404)
    const log = await server.sql`select count(*)::int as n from hamlet_events where host = ${host}`
    expect(log[0].n).toBe(1)
    // the supervisor's next reconcile keeps it removed
    await Effect.runPromise(server.supervisor.reload)
    expect((await server.call(host, "/api/GetFeed")).status).toBe(404)
  })

  it("ignores host changes on the bus for hosts that are not hostnames; a bad stored host is skipped", async () => {
    // a key holder's service may still send a bad host: "*" would have joined every host's queue group
    for (const host of ["*", "not json", "a.>"]) {
      await Effect.runPromise(
        announceHostChange(signHostChange({ action: "add", project: "horatio", host }, HORATIO_KEY)).pipe(
          Effect.provideService(Bus, server.bus),
        ),
      )
    }
    await Effect.runPromise(server.bus.flush)
    await new Promise((resolve) => setTimeout(resolve, 200))
    const stored = await server
      .sql`select count(*)::int as n from hamlet_hosts where host in ('*', 'not json', 'a.>')`
    expect(stored[0].n).toBe(0)
    expect((await server.call("blog.example.com", "/api/GetFeed")).status).toBe(200)
    // a row an older version (or a hand) wrote: the node keeps serving, and reloads, without it
    await server.sql`insert into hamlet_hosts (host, project, source, partition_name)
                     values ('bad host', 'horatio', 'database', 'hamlet_events_none')`
    try {
      await Effect.runPromise(server.supervisor.reload)
      expect((await server.call("blog.example.com", "/api/GetFeed")).status).toBe(200)
    } finally {
      await server.sql`delete from hamlet_hosts where host = 'bad host'`
    }
  })

  it("a host removed on the control subject stays removed after a reload, as an added one stays added", async () => {
    const host = "commanded.horatio.test"
    const publish = (action: "add" | "remove") =>
      Effect.runPromise(
        announceHostChange(signHostChange({ action, project: "horatio", host }, HORATIO_KEY)).pipe(
          Effect.provideService(Bus, server.bus),
        ),
      )
    const status = async () => (await server.call(host, "/api/GetFeed")).status
    const live = async () =>
      (await server.sql`select removed_at is null as live from hamlet_hosts where host = ${host}`)[0]?.live
    await publish("add")
    await until("the added host to be served", async () => (await status()) === 200)
    expect(await live()).toBe(true)
    await publish("remove")
    await until("the removed host to be refused", async () => (await status()) === 404)
    expect(await live()).toBe(false)
    await Effect.runPromise(server.supervisor.reload)
    expect(await status()).toBe(404)
  })

  it("a change notification makes the node follow hamlet_hosts, not the message", async () => {
    const host = "notified.horatio.test"
    const status = async () => (await server.call(host, "/api/GetFeed")).status
    const notify = () =>
      Effect.runPromise(
        announceHostChange({ action: "changed", project: "horatio", host }).pipe(
          Effect.provideService(Bus, server.bus),
        ),
      )
    // another node's API wrote the row, then announced it
    await Effect.runPromise(registerHost(server.sql, "horatio", host, "database"))
    await notify()
    await until("the registered host to be served", async () => (await status()) === 200)
    // another node removed it; this node hears of it late, after a stale "changed"
    await server.sql`update hamlet_hosts set removed_at = now() where host = ${host}`
    await notify()
    await until("the retired host to be refused", async () => (await status()) === 404)
    // registered again (its log continuing): the next notification brings it back
    await Effect.runPromise(registerHost(server.sql, "horatio", host, "database"))
    await notify()
    await until("the host to be served again", async () => (await status()) === 200)
  })

  it("a forged change notification makes the node read hamlet_hosts, and writes nothing", async () => {
    const forged = "forged.horatio.test"
    const registered = "registered.horatio.test"
    const notify = (host: string) =>
      Effect.runPromise(
        announceHostChange({ action: "changed", project: "horatio", host }).pipe(
          Effect.provideService(Bus, server.bus),
        ),
      )
    await Effect.runPromise(registerHost(server.sql, "horatio", registered, "database"))
    // "changed" carries no authority: for a host without a row it is only a read that finds none
    await notify(forged)
    await notify(registered)
    await until(
      "the registered host to be served",
      async () => (await server.call(registered, "/api/GetFeed")).status === 200,
    )
    expect((await server.call(forged, "/api/GetFeed")).status).toBe(404)
    const rows = await server.sql`select count(*)::int as n from hamlet_hosts where host = ${forged}`
    expect(rows[0].n).toBe(0)
  })

  it("refuses a missing key, a wrong key and another project's key", async () => {
    expect((await admin("/admin/projects/horatio/hosts", undefined)).status).toBe(401)
    expect((await admin("/admin/projects/horatio/hosts", "not-the-key-at-all")).status).toBe(401)
    expect((await admin("/admin/projects/horatio/hosts", OTHELLO_KEY)).status).toBe(403)
    const stolen = await admin("/admin/projects/othello/hosts", HORATIO_KEY, {
      body: { host: "x.othello.test" },
    })
    expect(stolen.status).toBe(403)
  })

  it("tells only a key holder whether a host or project exists", async () => {
    for (const key of [undefined, "not-the-key-at-all"]) {
      for (const path of ["/admin/hosts/nowhere.example.com/keys", "/admin/hosts/blog.example.com/keys"]) {
        expect([path, key, (await admin(path, key)).status]).toEqual([path, key, 401])
      }
      expect((await admin("/admin/projects/nosuchproject/hosts", key)).status).toBe(401)
      expect((await admin("/admin/hosts/nowhere.example.com/events", key)).status).toBe(401)
    }
    expect((await admin("/admin/hosts/nowhere.example.com/keys", HORATIO_KEY)).status).toBe(404)
    expect((await admin("/admin/projects/nosuchproject/hosts", HORATIO_KEY)).status).toBe(404)
  })

  it("will not hand a host of one project to another", async () => {
    const res = await admin("/admin/projects/othello/hosts", OTHELLO_KEY, {
      body: { host: "blog.example.com" },
    })
    expect(res.status).toBe(409)
    expect((await server.call("blog.example.com", "/api/GetFeed")).status).toBe(200)
  })

  it("answers a method a route does not take with 405 and the methods it does", async () => {
    const routes = [
      ["/admin/projects/horatio/hosts", "PUT", "GET, POST"],
      ["/admin/projects/horatio/hosts/blog.example.com", "GET", "DELETE"],
      ["/admin/hosts/blog.example.com/keys", "DELETE", "GET, POST"],
      ["/admin/hosts/blog.example.com/events", "POST", "GET, HEAD"],
    ]
    for (const [path, method, allow] of routes) {
      const response = await admin(path, HORATIO_KEY, { method })
      expect([path, response.status, response.headers.get("allow")]).toEqual([path, 405, allow])
    }
  })

  it("adds and removes a host named in Unicode, by either spelling", async () => {
    const added = await admin("/admin/projects/horatio/hosts", HORATIO_KEY, {
      body: { host: "bücher.horatio.test" },
    })
    expect(await added.json()).toEqual({ host: "xn--bcher-kva.horatio.test", project: "horatio" })
    const path = `/admin/projects/horatio/hosts/${encodeURIComponent("bücher.horatio.test")}`
    expect((await admin(`${path}:80`, HORATIO_KEY, { method: "DELETE" })).status).toBe(400) // not exactly a name
    expect((await admin(path, HORATIO_KEY, { method: "DELETE" })).status).toBe(200)
    expect((await server.call("xn--bcher-kva.horatio.test", "/api/GetFeed")).status).toBe(404)
  })

  it("rejects a bad hostname and refuses to remove a folder host", async () => {
    const bad = await admin("/admin/projects/horatio/hosts", HORATIO_KEY, { body: { host: "bad_host" } })
    expect(bad.status).toBe(400)
    const huge = await admin("/admin/projects/horatio/hosts", HORATIO_KEY, {
      body: { host: "a".repeat(10_000) },
    })
    expect(huge.status).toBe(413)
    const folder = await admin("/admin/projects/horatio/hosts/blog.example.com", HORATIO_KEY, {
      method: "DELETE",
    })
    expect(folder.status).toBe(409)
  })

  it(
    "answers a body that stops arriving 408 and one that is not UTF-8 saying so, as the handler routes do",
    async () => {
      const notUtf8 = await server.call("localhost", "/admin/projects/horatio/hosts", {
        body: new Uint8Array([0x7b, 0x22, 0x68, 0x6f, 0x73, 0x74, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
        headers: { authorization: `Bearer ${HORATIO_KEY}` },
      })
      expect(notUtf8.status).toBe(400)
      expect((await notUtf8.json()).error.message).toBe("the request body is not valid UTF-8")

      const socket = connect(server.port, "127.0.0.1")
      const answer = new Promise<string>((resolve) => {
        let text = ""
        socket.on("data", (chunk) => {
          text += chunk.toString()
          if (text.includes("}}")) resolve(text) // the error body's end
        })
        socket.on("close", () => resolve(text))
      })
      socket.write(
        "POST /admin/projects/horatio/hosts HTTP/1.1\r\nHost: localhost\r\n" +
          `Authorization: Bearer ${HORATIO_KEY}\r\nContent-Length: 50\r\n\r\n{"ho`,
      )
      const text = await Promise.race([answer, new Promise<string>((r) => setTimeout(() => r(""), 15_000))])
      socket.destroy()
      expect(text).toMatch(/^HTTP\/1.1 408/)
      expect(text).toContain("the request body stopped arriving")
    },
    20_000,
  )

  it("mints host admin keys shown once and stored hashed, lists and revokes them", async () => {
    const minted = await admin("/admin/hosts/blog.example.com/keys", HORATIO_KEY, { method: "POST" })
    expect(minted.status).toBe(201)
    const { keyId, key } = await minted.json()
    expect(key).toMatch(/^hk_[0-9a-f]{16}_/)
    const stored = await server.sql`select key_hash from host_secrets where key_id = ${keyId}`
    const secret = key.slice(`hk_${keyId}_`.length) // base64url: may itself contain "_"
    expect(secret).toHaveLength(43)
    expect(stored[0].key_hash).toMatch(/^[0-9a-f]{64}$/)
    expect(stored[0].key_hash).not.toContain(secret)
    const keys = await (await admin("/admin/hosts/blog.example.com/keys", HORATIO_KEY)).json()
    expect(keys.keys).toContainEqual(expect.objectContaining({ keyId, revokedAt: null }))
    expect((await admin("/admin/hosts/blog.example.com/keys", OTHELLO_KEY)).status).toBe(403)
    const revoked = await admin(`/admin/hosts/blog.example.com/keys/${keyId}`, HORATIO_KEY, {
      method: "DELETE",
    })
    expect(revoked.status).toBe(200)
    const again = await admin(`/admin/hosts/blog.example.com/keys/${keyId}`, HORATIO_KEY, {
      method: "DELETE",
    })
    expect(again.status).toBe(404)
  })

  it("a host admin key exports its own host's log, not another host's, until revoked", async () => {
    await server.call("blog.example.com", "/api/SubmitItem", { body: JSON.stringify({ title: "audited" }) })
    const { keyId, key } =
      await (await admin("/admin/hosts/blog.example.com/keys", HORATIO_KEY, { method: "POST" }))
        .json()
    const own = await admin("/admin/hosts/blog.example.com/events", key)
    expect(own.status).toBe(200)
    expect((await own.text()).trim().split("\n").length).toBeGreaterThan(0)
    expect((await admin("/admin/hosts/news.example.com/events", key)).status).toBe(401)
    await admin(`/admin/hosts/blog.example.com/keys/${keyId}`, HORATIO_KEY, { method: "DELETE" })
    expect((await admin("/admin/hosts/blog.example.com/events", key)).status).toBe(401)
  })

  it("another project's key can neither remove a host nor claim one whose log it does not own", async () => {
    const host = "kept.horatio.test"
    expect((await admin("/admin/projects/horatio/hosts", HORATIO_KEY, { body: { host } })).status).toBe(201)
    const steal = await admin(`/admin/projects/othello/hosts/${host}`, OTHELLO_KEY, { method: "DELETE" })
    expect(steal.status).toBe(404)
    // another project's folder host is no different: not "comes from a folder", which would tell
    const folder = await admin("/admin/projects/othello/hosts/blog.example.com", OTHELLO_KEY, {
      method: "DELETE",
    })
    expect(folder.status).toBe(404)
    expect((await folder.json()).error.message).toBe("project othello has no run-time host blog.example.com")
    expect((await server.call(host, "/api/GetFeed")).status).toBe(200)
    await admin(`/admin/projects/horatio/hosts/${host}`, HORATIO_KEY, { method: "DELETE" })
    // removed, its log still horatio's: othello cannot take the name and continue that log
    const claim = await admin("/admin/projects/othello/hosts", OTHELLO_KEY, { body: { host } })
    expect(claim.status).toBe(409)
    expect((await claim.json()).error).toEqual({
      code: "conflict",
      message: `host ${host} belongs to another project`,
    })
    expect((await server.call(host, "/api/GetPosts")).status).toBe(404)
  })

  it("a signed remove of a host the project has no run-time row for is not_found, as the API's DELETE, and records nothing", async () => {
    const ask = async (change: unknown) => {
      const reply = await Effect.runPromise(
        server.bus.request(HOSTS_CONTROL_SUBJECT, new TextEncoder().encode(JSON.stringify(change)), {
          timeoutMs: 10_000,
        }),
      )
      return JSON.parse(new TextDecoder().decode(reply.data))
    }
    const recorded = async (host: string) =>
      (await server.sql`select 1 from hamlet_signed_host_changes where host = ${host}`).length
    // never registered, another project's folder host, another project's run-time host
    const theirs = "theirs.othello.test"
    expect((await admin("/admin/projects/othello/hosts", OTHELLO_KEY, { body: { host: theirs } })).status)
      .toBe(201)
    for (const host of ["never.horatio.test", "theatre.example.com", theirs]) {
      const error = { code: "not_found", message: `project horatio has no run-time host ${host}` }
      expect(await ask(signHostChange({ action: "remove", project: "horatio", host }, HORATIO_KEY)))
        .toEqual({ ok: false, error })
      // the API's answer, word for word
      const refused = await admin(`/admin/projects/horatio/hosts/${host}`, HORATIO_KEY, { method: "DELETE" })
      expect(refused.status).toBe(404)
      expect(await refused.json()).toEqual({ error })
      expect(await recorded(host)).toBe(0)
    }
    expect((await server.call("theatre.example.com", "/api/GetPosts")).status).toBe(200)
    expect((await server.call(theirs, "/api/GetPosts")).status).toBe(200)

    // a host the project has in hamlet_hosts is removed also on a node that has not followed its add
    const unfollowed = "unfollowed.horatio.test"
    await Effect.runPromise(registerHost(server.sql, "horatio", unfollowed, "database"))
    expect((await server.call(unfollowed, "/api/GetFeed")).status).toBe(404)
    expect(await ask(signHostChange({ action: "remove", project: "horatio", host: unfollowed }, HORATIO_KEY)))
      .toEqual({ ok: true, output: { host: unfollowed, served: false } })
    const row = await server
      .sql`select removed_at is null as live from hamlet_hosts where host = ${unfollowed}`
    expect(row[0].live).toBe(false)
    expect(await recorded(unfollowed)).toBe(1)
    // removed, it is not found the next time, as DELETE answers
    expect(await ask(signHostChange({ action: "remove", project: "horatio", host: unfollowed }, HORATIO_KEY)))
      .toMatchObject({ ok: false, error: { code: "not_found" } })
  })
})
