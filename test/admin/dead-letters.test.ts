/**
 * Dead letters: a request published on the bus without a reply subject whose handling fails is
 * kept in hamlet_dlq (never with its session), listed, sent again and discarded through the admin
 * API by the key of the project that owns the host — on PGlite with the in-process bus and on
 * Postgres with NATS.
 */
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { encodeJson } from "../../src/bus/envelope.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { checkService } from "../support/services.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { until } from "../support/eventually.ts"

const HOST = "gated.example.com"
const GATED_KEY = "gated-dead-letter-key-456789"
const HORATIO_KEY = "horatio-dead-letter-key-0123"
const LETTERS = `/admin/hosts/${HOST}/dead-letters`
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

interface Letter {
  readonly id: string
  readonly handler: string
  readonly requestId: string | null
  readonly payload: string
  readonly requestBytes: number | null
  readonly error: { code: string; message: string }
  readonly attempts: number
}

const hasPostgres = await checkService("postgres")
const hasNats = await checkService("nats")

const describeDeadLetters = (kind: "pglite" | "postgres") =>
  describe(`dead letters on ${kind}`, () => {
    let server: TestServer
    const admin = (path: string, method = "GET", key = GATED_KEY) =>
      server.call("admin.invalid", path, { method, headers: bearer(key) })
    const letters = async (): Promise<ReadonlyArray<Letter>> => {
      const res = await admin(LETTERS)
      expect(res.status).toBe(200)
      return (await res.json()).deadLetters
    }
    /** Publishes without a reply subject: nobody will hear the answer. */
    const publish = (handler: string, data: Uint8Array) =>
      Effect.runPromise(server.bus.publish(requestSubject("gated", HOST, handler), data))
    const letterOf = async (requestId: string) => {
      let found: Letter | undefined
      await until(`dead letter ${requestId}`, async () => {
        found = (await letters()).find((l) => l.requestId === requestId)
        return found !== undefined
      })
      return found!
    }

    beforeAll(async () => {
      server = await startTestServer({
        store: kind,
        bus: kind === "postgres" ? "nats" : "memory",
        configPath: "./test/fixtures/dead-letters/config.json",
      })
    })
    afterAll(() => server?.close())

    it("keeps a failed fire-and-forget request with its error, without its session", async () => {
      await publish(
        "Pass",
        encodeJson({
          id: "req-ann",
          input: { who: "ann" },
          meta: { session: "secret-token", correlationId: "c-1" },
        }),
      )
      // kept for a later test, which retries it twice at once once the gate is open
      await publish("Pass", encodeJson({ id: "req-twice", input: { who: "twice" } }))
      const letter = await letterOf("req-ann")
      expect(letter.handler).toBe("Pass")
      expect(letter.error).toMatchObject({ code: "conflict", message: "the gate is closed" })
      expect(letter.attempts).toBe(0)
      expect(JSON.parse(letter.payload)).toEqual({
        id: "req-ann",
        input: { who: "ann" },
        meta: { correlationId: "c-1" },
      })
      expect(letter.payload).not.toContain("secret-token")
    })

    it("keeps a malformed request as its text, and nothing for answered or successful requests", async () => {
      // a caller waiting for the answer hears the error: no dead letter
      const answered = await Effect.runPromise(
        server.bus.request(
          requestSubject("gated", HOST, "Pass"),
          encodeJson({ id: "req-heard", input: { who: "x" } }),
          {
            timeoutMs: 5_000,
          },
        ),
      )
      expect(new TextDecoder().decode(answered.data)).toContain("the gate is closed")
      // a published request that succeeds: no dead letter
      await publish("Open", encodeJson({ id: "req-open", input: {} }))
      await publish("Nope", encodeJson({ id: "req-nope", input: {} }))
      await publish("Pass", new TextEncoder().encode("not json \u0000 at all"))
      expect((await letterOf("req-nope")).error.code).toBe("not_found")
      await until("the malformed request's letter", async () =>
        (await letters()).some((l) =>
          l.payload === "not json \uFFFD at all" && l.error.code === "bad_request"
        ))
      const ids = (await letters()).map((l) =>
        l.requestId
      )
      expect(ids).not.toContain("req-heard")
      expect(ids).not.toContain("req-open")
      const metrics = await (await server.call("admin.invalid", "/metrics")).text()
      expect(Number(/^hamlet_dead_letters_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3)
    })

    it("sends a letter again: kept with one more attempt while it fails, removed once it succeeds", async () => {
      // what made ann's request fail is gone once the gate is open
      expect((await server.call(HOST, "/api/Open", { method: "POST", body: "{}" })).status).toBe(200)
      const ann = await letterOf("req-ann")
      const retried = await admin(`${LETTERS}/${ann.id}/retry`, "POST")
      expect(retried.status).toBe(200)
      const body = await retried.json()
      expect(body).toMatchObject({ id: ann.id, removed: true, reply: { ok: true, output: { who: "ann" } } })
      expect((await letters()).map((l) => l.id)).not.toContain(ann.id)
      const passed = await server.sql`select count(*)::int as n from hamlet_events
        where host = ${HOST} and type = 'Passed' and data->>'who' = 'ann'`
      expect(passed[0].n).toBe(1)

      const nope = await letterOf("req-nope")
      const failed = await (await admin(`${LETTERS}/${nope.id}/retry`, "POST")).json()
      expect(failed).toMatchObject({ removed: false, reply: { ok: false, error: { code: "not_found" } } })
      expect((await letterOf("req-nope")).attempts).toBe(1)
    })

    it("never stores a session, also in a request that is not JSON", async () => {
      await publish(
        "Pass",
        new TextEncoder().encode('{"id":"req-cut","meta":{"session":"cut-secret"},"input":{'),
      )
      await publish(
        "Pass",
        encodeJson({ id: "req-dup", meta: { session: "dup-secret" }, input: { who: "dup" } }).slice(0, -1),
      )
      // a key spelled with an escape; a value holding commas
      await publish(
        "Pass",
        new TextEncoder().encode('{"id":"req-esc","meta":{"sess\\u0069on":"esc-secret"},"input":{"title":5}'),
      )
      await publish(
        "Pass",
        new TextEncoder().encode('{"id":"req-obj","meta":{"session":{"a":1,"b":"obj-secret"}},"input":{'),
      )
      await publish(
        "Pass",
        new TextEncoder().encode('{"id":"req-arr","meta":{"session":["t","arr-secret"]},"input":{'),
      )
      const cut = ["req-cut", "req-dup", "req-esc", "req-obj", "req-arr"]
      await until("the cut requests' letters", async () =>
        (await letters()).filter((l) =>
          cut.some((id) =>
            l.payload.includes(id)
          )
        ).length === cut.length)
      const listed = JSON.stringify(await letters())
      expect(listed).not.toMatch(/-secret/)
      const stored = await server.sql`select payload from hamlet_dlq where host = ${HOST}`
      expect(
        stored.map((r) => r.payload).join("\n"),
      ).not.toMatch(/cut-secret|dup-secret|esc-secret|obj-secret|arr-secret|secret-token/)
    })

    it("keeps only the beginning of a request too large to run, and will not send it again", async () => {
      // over the project's limit (256 KiB of input, 8 KiB for the envelope), refused unread
      const big = (n: number) =>
        encodeJson({
          id: `req-big-${n}`,
          input: { who: "x".repeat(300_000) },
          meta: { session: "big-secret" },
        })
      for (let n = 0; n < 5; n++) await publish("Pass", big(n))
      const isBig = (l: Letter) => l.payload.includes("req-big-")
      await until("the large requests' letters", async () => (await letters()).filter(isBig).length === 5)
      const kept = (await letters()).filter(isBig)
      for (const letter of kept) {
        expect(letter.requestBytes).toBe(big(0).length)
        expect(letter.payload.length).toBeLessThan(1100)
        expect(letter.payload).not.toContain("big-secret")
        expect(letter.error.code).toBe("bad_request")
        expect(letter.error.message).toMatch(/^request too large: \d+ bytes/)
      }
      const stored = await server.sql`select sum(length(payload))::int as chars from hamlet_dlq
        where host = ${HOST} and request_bytes is not null`
      expect(stored[0].chars).toBeLessThan(5 * 1100)
      const retried = await admin(`${LETTERS}/${kept[0].id}/retry`, "POST")
      expect(retried.status).toBe(409)
      expect((await retried.json()).error.message).toMatch(/keeps only the beginning of its \d+-byte request/)
      expect((await letters()).find((l) => l.id === kept[0].id)?.attempts).toBe(0)
      // a request within the limit is kept whole
      expect((await letterOf("req-twice")).requestBytes).toBeNull()
      for (const letter of kept) await admin(`${LETTERS}/${letter.id}`, "DELETE")
    })

    it("keeps only the beginning of a request within the limit that re-encoded without its session outgrows it", async () => {
      // 250 KB as sent; without its session, written again, 1e20 takes 21 digits: 1.1 MB
      const grown = `{"id":"req-grown","input":{"who":[${Array(50_000).fill("1e20").join(",")}]},` +
        `"meta":{"session":"grown-secret"}}`
      await publish("Pass", new TextEncoder().encode(grown))
      await until("the grown request's letter", async () =>
        (await letters()).some((l) => l.payload.includes("req-grown")))
      const letter = (await letters()).find((l) =>
        l.payload.includes("req-grown")
      )!
      expect(letter.requestBytes).toBe(grown.length)
      expect(letter.payload.length).toBeLessThan(1100)
      expect(letter.payload).not.toContain("grown-secret")
      await admin(`${LETTERS}/${letter.id}`, "DELETE")
    })

    it("two retries of one letter at once run its command once", async () => {
      const twice = await letterOf("req-twice")
      const replies = await Promise.all(
        [1, 2].map(async () => (await admin(`${LETTERS}/${twice.id}/retry`, "POST")).json()),
      )
      expect(replies.map((r) => r.reply.ok)).toEqual([true, true])
      const passed = await server.sql`select count(*)::int as n from hamlet_events
        where host = ${HOST} and type = 'Passed' and data->>'who' = 'twice'`
      expect(passed[0].n).toBe(1)
    })

    it("a host's own admin key opens its dead letters; another host's key does not", async () => {
      const minted = async (host: string, key: string) =>
        (await (await admin(`/admin/hosts/${host}/keys`, "POST", key)).json()).key as string
      const gatedHostKey = await minted(HOST, GATED_KEY)
      const blogHostKey = await minted("blog.example.com", HORATIO_KEY)
      expect((await admin(LETTERS, "GET", gatedHostKey)).status).toBe(200)
      expect((await admin(LETTERS, "GET", blogHostKey)).status).toBe(401)
    })

    it("discards a letter; answers 404 for one that is not there", async () => {
      const nope = await letterOf("req-nope")
      expect((await admin(`${LETTERS}/${nope.id}`, "DELETE")).status).toBe(204)
      expect((await admin(`${LETTERS}/${nope.id}`, "DELETE")).status).toBe(404)
      expect((await admin(`${LETTERS}/${nope.id}/retry`, "POST")).status).toBe(404)
    })

    it("pages oldest first and refuses bad pages, methods, hosts and keys", async () => {
      for (const who of ["p1", "p2", "p3"]) {
        await publish("Nope", encodeJson({ id: `req-${who}`, input: { who } }))
      }
      await letterOf("req-p3")
      const all = await letters()
      const first = await (await admin(`${LETTERS}?limit=2`)).json()
      expect(first.deadLetters.map((l: Letter) => l.id)).toEqual(all.slice(0, 2).map((l) => l.id))
      expect(first.next).toBe(all[1].id)
      const rest = await (await admin(`${LETTERS}?after=${first.next}&limit=1000`)).json()
      expect(rest.deadLetters.map((l: Letter) => l.id)).toEqual(all.slice(2).map((l) => l.id))
      expect(rest.next).toBeNull()

      const unknownHandler = await (await admin(`${LETTERS}?code=not_found&handler=Nope&limit=1000`)).json()
      expect(unknownHandler.deadLetters.map((l: Letter) => l.requestId)).toEqual(
        expect.arrayContaining(["req-p1", "req-p2", "req-p3"]),
      )
      expect(unknownHandler.deadLetters.every((l: Letter) => l.error.code === "not_found")).toBe(true)
      expect((await (await admin(`${LETTERS}?code=conflict&handler=Nope`)).json()).deadLetters).toEqual([])
      expect((await (await admin(`${LETTERS}?handler=Other`)).json()).deadLetters).toEqual([])
      const badCode = await admin(`${LETTERS}?code=teapot`)
      expect(badCode.status).toBe(400)
      expect((await badCode.json()).error.message).toMatch(/code must be one of .*overloaded/)
      expect((await admin(`${LETTERS}?handler=not-a-name`)).status).toBe(400)

      expect((await admin(`${LETTERS}?limit=0`)).status).toBe(400)
      expect((await admin(`${LETTERS}?after=x`)).status).toBe(400)
      expect((await admin(LETTERS, "POST")).status).toBe(405)
      expect((await admin("/admin/hosts/bad_host!/dead-letters")).status).toBe(400)
      expect((await admin("/admin/hosts/nowhere.example.com/dead-letters")).status).toBe(404)
      expect((await server.call("admin.invalid", LETTERS)).status).toBe(401)
      expect((await admin(LETTERS, "GET", HORATIO_KEY)).status).toBe(403)
    })
  })

describeDeadLetters("pglite")
describe.skipIf(!hasPostgres || !hasNats)("with Postgres and NATS", () => {
  describeDeadLetters("postgres")
})
