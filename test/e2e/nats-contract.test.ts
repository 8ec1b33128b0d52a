/**
 * The NATS contract as another service sees it: a plain NATS client (not Hamlet's bus
 * code) calls handlers by subject, gets `{ok,…}` replies for good and bad envelopes, and
 * hears committed events on `<root>.evt.…`; it changes a project's hosts on `<root>.ctl.hosts`
 * only with commands signed with the project key (horatio has a key here, othello none).
 */
import { connect, headers, type NatsConnection } from "@nats-io/transport-node"
import { createHmac } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { controlSubject, eventSubject, requestSubject, SUBJECT_ROOT } from "../../src/bus/subjects.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { checkService, NATS_URL } from "../support/services.ts"

const available = (await checkService("postgres")) && (await checkService("nats"))

const HORATIO_KEY = "horatio-ctl-hosts-key-for-tests"

/** A host command signed as the README tells other services to: no Hamlet code involved. */
const signed = (
  change: { action: "add" | "remove"; project: string; host: string },
  key = HORATIO_KEY,
  at = Date.now(),
) => {
  const text = `${SUBJECT_ROOT}\n${change.action}\n${change.project}\n${change.host}\n${at}`
  return { ...change, at, signature: createHmac("sha256", key).update(text).digest("hex") }
}

describe.skipIf(!available)("external services calling handlers over NATS", () => {
  let server: TestServer
  let nc: NatsConnection

  beforeAll(async () => {
    server = await startTestServer({
      store: "postgres",
      bus: "nats",
      configPath: "test/fixtures/ctl-hosts/config.json",
    })
    nc = await connect({ servers: NATS_URL })
  }, 60_000)
  afterAll(async () => {
    await nc?.close()
    await server?.close()
  })

  const call = async (subject: string, payload: string | Uint8Array) =>
    (await nc.request(subject, payload, { timeout: 5_000 })).json<
      { ok: true; output: Record<string, unknown> } | {
        ok: false
        error: { code: string; message: string; issues?: unknown[] }
      }
    >()

  it("a request on the handler's subject gets {ok:true, output}", async () => {
    const reply = await call(
      requestSubject("horatio", "blog.example.com", "SubmitItem"),
      JSON.stringify({ id: "r1", input: { title: "from nats" } }),
    )
    expect(reply.ok).toBe(true)
    if (reply.ok) expect(typeof reply.output.id).toBe("string")
  })

  it("malformed envelopes, unknown handlers and schema violations get {ok:false} with a code", async () => {
    const subject = requestSubject("horatio", "blog.example.com", "SubmitItem")
    const notJson = await call(subject, "{nope")
    expect(notJson).toMatchObject({ ok: false, error: { code: "bad_request" } })
    const noId = await call(subject, JSON.stringify({ input: { title: "x" } }))
    expect(noId).toMatchObject({ ok: false, error: { code: "bad_request" } })
    const badInput = await call(subject, JSON.stringify({ id: "r2", input: { title: 42 } }))
    expect(badInput).toMatchObject({ ok: false, error: { code: "bad_request", issues: [{ path: "title" }] } })
    const unknown = await call(
      requestSubject("horatio", "blog.example.com", "NoSuchHandler"),
      JSON.stringify({ id: "r3", input: {} }),
    )
    expect(unknown).toMatchObject({ ok: false, error: { code: "not_found" } })
    // the actor survived all of that
    const after = await call(subject, JSON.stringify({ id: "r4", input: { title: "still here" } }))
    expect(after.ok).toBe(true)
  })

  it("holds callers on NATS to HTTP's limits: the project's body size and short ids, writing nothing", async () => {
    const subject = requestSubject("horatio", "news.example.com", "SubmitItem")
    const before = await server
      .sql`select count(*)::int as n from hamlet_events where host = 'news.example.com'`
    // the project takes 256 KiB of input, as HTTP's 413 does (NATS itself carries 1 MiB)
    const big = await call(
      subject,
      JSON.stringify({ id: "big-1", input: { title: "x", link: "l".repeat(600_000) } }),
    )
    expect(big).toMatchObject({ ok: false, error: { code: "bad_request" } })
    if (!big.ok) expect(big.error.message).toMatch(/^request too large/)
    // ids are kept in every event's meta (and so in the hash chain): short, plain text
    for (
      const envelope of [
        { id: "x".repeat(129), input: { title: "long id" } },
        { id: "", input: { title: "empty id" } },
        { id: "ok-id", input: { title: "long correlation" }, meta: { correlationId: "c".repeat(300) } },
      ]
    ) {
      expect(await call(subject, JSON.stringify(envelope))).toMatchObject({
        ok: false,
        error: { code: "bad_request" },
      })
    }
    const after = await server
      .sql`select count(*)::int as n from hamlet_events where host = 'news.example.com'`
    expect(after[0].n).toBe(before[0].n)
    // an x-request-id header that is no request id is not taken: the envelope's id names the request
    const h = headers()
    h.set("x-request-id", "y".repeat(500))
    const reply = await nc.request(subject, JSON.stringify({ id: "env-id-9", input: { title: "ids" } }), {
      timeout: 5_000,
      headers: h,
    })
    expect(reply.json<{ ok: boolean }>().ok).toBe(true)
    const [event] = await server.sql`select meta from hamlet_events where host = 'news.example.com'
      order by seq desc limit 1`
    expect(event.meta.requestId).toBe("env-id-9")
  })

  const askHosts = async (change: Record<string, unknown>) =>
    (await nc.request(controlSubject("hosts"), JSON.stringify(change), { timeout: 10_000 })).json<
      Record<string, unknown>
    >()
  const newHost = (label: string) => `${label}-${crypto.randomUUID().slice(0, 8)}.contract.test`
  const rowsOf = async (host: string) =>
    (await server.sql`select count(*)::int as n from hamlet_hosts where host = ${host}`)[0].n

  it("a host change sent as a request on ctl.hosts is answered with its outcome", async () => {
    const host = newHost("asked")
    expect(await askHosts(signed({ action: "add", project: "horatio", host }))).toEqual({
      ok: true,
      output: { host, served: true },
    })
    expect((await server.call(host, "/api/GetFeed")).status).toBe(200)
    // a host whose log another project owns is refused, and the caller hears why
    const theirs = signed({ action: "add", project: "horatio", host: "theatre.example.com" })
    expect(await askHosts(theirs)).toMatchObject({
      ok: false,
      error: { code: "conflict", message: "host theatre.example.com belongs to another project" },
    })
    expect(await askHosts(signed({ action: "add", project: "horatio", host: "not_a_host" }))).toMatchObject({
      ok: false,
      error: { code: "bad_request" },
    })
    // a message that is no host change: one answer, from the answering member only
    const bad = await nc.request(controlSubject("hosts"), "{nope", { timeout: 10_000 })
    expect(bad.json()).toMatchObject({ ok: false, error: { code: "bad_request" } })
    expect(await askHosts(signed({ action: "remove", project: "horatio", host }))).toEqual({
      ok: true,
      output: { host, served: false },
    })
    expect((await server.call(host, "/api/GetFeed")).status).toBe(404)
  })

  it("a signed host change of a host a folder serves is refused as a conflict, as the admin API refuses it", async () => {
    const host = "blog.example.com" // projects/horatio/hosts/blog.example.com
    for (const action of ["remove", "add"] as const) {
      expect(await askHosts(signed({ action, project: "horatio", host }))).toEqual({
        ok: false,
        error: {
          code: "conflict",
          message: `host ${host} comes from a folder; add or remove the folder instead`,
        },
      })
    }
    expect((await server.call(host, "/api/GetFeed")).status).toBe(200)
    const recorded = await server.sql`select 1 from hamlet_signed_host_changes where host = ${host}`
    expect(recorded.length).toBe(0)
  })

  it("a signed remove of a host the project has no run-time row for is not_found, as the admin API's 404", async () => {
    // never registered, and another project's folder host (projects/othello/hosts/theatre.example.com)
    for (const host of [newHost("never"), "theatre.example.com"]) {
      expect(await askHosts(signed({ action: "remove", project: "horatio", host }))).toEqual({
        ok: false,
        error: { code: "not_found", message: `project horatio has no run-time host ${host}` },
      })
      const recorded = await server.sql`select 1 from hamlet_signed_host_changes where host = ${host}`
      expect(recorded.length).toBe(0)
    }
    expect((await server.call("theatre.example.com", "/api/GetPosts")).status).toBe(200)
  })

  it("a signed host change seen on the bus and sent again is refused, also after a later change of the host", async () => {
    const host = newHost("replayed")
    const add = signed({ action: "add", project: "horatio", host })
    expect(await askHosts(add)).toMatchObject({ ok: true, output: { served: true } })
    const replayed = {
      ok: false,
      error: {
        code: "conflict",
        message: "this host change, or a later one of the host, was applied already: sign each afresh",
      },
    }
    expect(await askHosts(add)).toEqual(replayed)
    const remove = signed({ action: "remove", project: "horatio", host }, HORATIO_KEY, add.at + 1)
    expect(await askHosts(remove)).toMatchObject({ ok: true, output: { served: false } })
    // the add again, within its minute: it would serve the removed host once more
    expect(await askHosts(add)).toEqual(replayed)
    expect((await server.call(host, "/api/GetFeed")).status).toBe(404)
    // signed afresh, it applies
    const again = signed({ action: "add", project: "horatio", host }, HORATIO_KEY, add.at + 2)
    expect(await askHosts(again)).toMatchObject({ ok: true, output: { served: true } })
  })

  it("an unsigned host change on ctl.hosts is refused as unauthorized and nothing is kept", async () => {
    const host = newHost("unsigned")
    expect(await askHosts({ action: "add", project: "horatio", host })).toMatchObject({
      ok: false,
      error: { code: "unauthorized" },
    })
    expect((await server.call(host, "/api/GetFeed")).status).toBe(404)
    expect(await rowsOf(host)).toBe(0)
    // nor can anyone without the key remove a host the project added
    const kept = newHost("kept")
    expect(await askHosts(signed({ action: "add", project: "horatio", host: kept }))).toMatchObject({
      ok: true,
    })
    expect(await askHosts({ action: "remove", project: "horatio", host: kept })).toMatchObject({
      ok: false,
      error: { code: "unauthorized" },
    })
    expect((await server.call(kept, "/api/GetFeed")).status).toBe(200)
  })

  it("a host change signed with another key is refused as unauthorized", async () => {
    const host = newHost("wrong-key")
    const reply = await askHosts(
      signed({ action: "add", project: "horatio", host }, "not-horatios-key-0123456"),
    )
    expect(reply).toMatchObject({ ok: false, error: { code: "unauthorized" } })
    // the key and the signature are nowhere in the answer
    expect(JSON.stringify(reply)).not.toContain(HORATIO_KEY)
    expect((await server.call(host, "/api/GetFeed")).status).toBe(404)
    expect(await rowsOf(host)).toBe(0)
  })

  it("a signed host change five minutes old, or from the future, is refused as unauthorized", async () => {
    const host = newHost("stale")
    for (const at of [Date.now() - 5 * 60_000, Date.now() + 5 * 60_000]) {
      expect(await askHosts(signed({ action: "add", project: "horatio", host }, HORATIO_KEY, at)))
        .toMatchObject({
          ok: false,
          error: { code: "unauthorized" },
        })
    }
    expect((await server.call(host, "/api/GetFeed")).status).toBe(404)
    expect(await rowsOf(host)).toBe(0)
  })

  it("host changes over NATS are disabled for a project without a key", async () => {
    const host = newHost("keyless")
    // othello has no key: whatever the message is signed with, it is refused
    for (const key of ["", HORATIO_KEY, "any-key-at-all-0123456789"]) {
      expect(await askHosts(signed({ action: "add", project: "othello", host }, key))).toEqual({
        ok: false,
        error: {
          code: "unauthorized",
          message: "host changes over NATS are disabled for a project without a key",
        },
      })
    }
    expect((await server.call(host, "/api/GetFeed")).status).toBe(404)
    expect(await rowsOf(host)).toBe(0)
  })

  it("the subject, not the payload, decides project and host", async () => {
    const reply = await call(
      requestSubject("horatio", "news.example.com", "SubmitItem"),
      JSON.stringify({ id: "r5", input: { title: "subject wins" }, host: "blog.example.com" }),
    )
    expect(reply.ok).toBe(true)
    const rows = await server.sql`select host from hamlet_events where data->>'title' = 'subject wins'`
    expect(rows.map((r) => r.host)).toEqual(["news.example.com"])
  })

  it("an event's meta keeps the request's correlation and key, never its session", async () => {
    const meta = {
      correlationId: "corr-1",
      causationId: "cause-1",
      idempotencyKey: "key-1",
      session: "sess_SECRET",
    }
    const reply = await call(
      requestSubject("horatio", "blog.example.com", "SubmitItem"),
      JSON.stringify({ id: "r6", input: { title: "with meta" }, meta }),
    )
    expect(reply.ok).toBe(true)
    const [row] = await server.sql`select meta from hamlet_events where data->>'title' = 'with meta'`
    expect(row.meta).toEqual({
      requestId: "r6",
      handler: "SubmitItem",
      correlationId: "corr-1",
      causationId: "cause-1",
      idempotencyKey: "key-1",
    })
  })

  it("the request id travels as a header and comes back on the reply", async () => {
    const h = headers()
    h.set("x-request-id", "trace-123")
    const msg = await nc.request(
      requestSubject("horatio", "blog.example.com", "GetFeed"),
      JSON.stringify({ id: "trace-123", input: {} }),
      { timeout: 5_000, headers: h },
    )
    expect(msg.headers?.get("x-request-id")).toBe("trace-123")
  })

  it("subscribers to the event subject see each committed event once, after commit", async () => {
    const seen: Array<{ seq: number; type: string; data: { id: string }; host: string }> = []
    const sub = nc.subscribe(`${SUBJECT_ROOT}.evt.horatio.blog_example_com.>`, {
      callback: (_e, m) => void seen.push(m.json()),
    })
    await nc.flush()
    const reply = await call(
      requestSubject("horatio", "blog.example.com", "SubmitItem"),
      JSON.stringify({ id: "r6", input: { title: "announced" } }),
    )
    if (!reply.ok) throw new Error("submit failed")
    const deadline = Date.now() + 5_000
    while (!seen.some((e) => e.data.id === reply.output.id) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10))
    }
    sub.unsubscribe()
    const mine = seen.filter((e) => e.data.id === reply.output.id)
    expect(mine).toHaveLength(1)
    expect(mine[0]).toMatchObject({ host: "blog.example.com", type: "ItemSubmitted" })
    const row = await server
      .sql`select seq from hamlet_events where host = 'blog.example.com' and data->>'id' = ${
      String(reply.output.id)
    }`
    expect(mine[0].seq).toBe(Number(row[0].seq))
    expect(eventSubject("horatio", "blog.example.com", "ItemSubmitted")).toContain(".evt.")
  })
})
