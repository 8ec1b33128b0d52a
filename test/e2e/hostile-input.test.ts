/**
 * Bad input gets a clear error and loses nothing (a tester's findings): text Postgres cannot
 * store, bytes that are not UTF-8, nesting too deep to encode, a body that never finishes,
 * idempotency keys too long or reused for another request, and replies too large for the bus
 * — each answered at once with a 4xx (or a 500 that says why), never a 500 from deep in a
 * write or a 504 after the full timeout, and nothing written by a refused request.
 */
import { Effect } from "effect"
import http2 from "node:http2"
import { connect } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { decodeText, encodeJson } from "../../src/bus/envelope.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { serveTempProject } from "../support/project-server.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { MOD } from "../support/temp-project.ts"

const HOST = "blog.example.com"

describe("hostile input on the sample projects", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  }, 60_000)
  afterAll(() => server?.close())

  const itemCount = async () =>
    Number(
      (await server.sql`select count(*)::int as n from horatio.microblog_item where host = ${HOST}`)[0].n,
    )

  const submit = (body: string | Uint8Array) => server.call(HOST, "/api/SubmitItem", { body })

  /** A request over the bus, as another service would send it; the parsed reply. */
  const overBus = async (payload: Uint8Array, handler = "SubmitItem") =>
    JSON.parse(decodeText(
      (await Effect.runPromise(
        server.bus.request(requestSubject("horatio", HOST, handler), payload, { timeoutMs: 5_000 }),
      )).data,
    ))

  /** The status line a raw HTTP/1.1 request gets: its bytes as written, then the connection closed. */
  const statusForRaw = (request: Uint8Array) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(server.port, "127.0.0.1")
      let text = ""
      socket.on("data", (chunk) => {
        text += chunk.toString()
        if (text.includes("\r\n")) {
          resolve(text.split("\r\n")[0])
          socket.destroy()
        }
      })
      socket.on("error", reject)
      socket.write(request)
    })

  /** The status line a raw request gets (a client sending UTF-8, or an absolute-form target). */
  const statusForHostBytes = (hostBytes: Uint8Array, target = "/api/GetFeed") => {
    const encoder = new TextEncoder()
    return statusForRaw(
      new Uint8Array([
        ...encoder.encode(`GET ${target} HTTP/1.1\r\nHost: `),
        ...hostBytes,
        ...encoder.encode("\r\nConnection: close\r\n\r\n"),
      ]),
    )
  }

  it("routes a Host header sent in UTF-8 to the name it spells, and refuses one that is not UTF-8", async () => {
    const encoder = new TextEncoder()
    // ideographic full stops map to dots (UTS #46): the same tenant as blog.example.com
    expect(await statusForHostBytes(encoder.encode("blog\u3002example\u3002com"))).toBe("HTTP/1.1 200 OK")
    // an IDN no project serves: a 404 naming its punycode, not a 400 for mojibake
    expect(await statusForHostBytes(encoder.encode("bücher.example"))).toBe("HTTP/1.1 404 Not Found")
    expect(await statusForHostBytes(new Uint8Array([0x62, 0xfc, 0x2e, 0x65, 0x78]))).toBe(
      "HTTP/1.1 400 Bad Request",
    )
  })

  it("refuses an absolute-form target naming another host than the Host header, never routing to either", async () => {
    const blog = new TextEncoder().encode(HOST)
    expect(await statusForHostBytes(blog, "http://theatre.example.com/api/GetPosts")).toBe(
      "HTTP/1.1 400 Bad Request",
    )
    expect(await statusForHostBytes(blog, "http://blog.example.com/api/GetFeed")).toBe("HTTP/1.1 200 OK")
    expect(await statusForHostBytes(blog, "http://BLOG.example.com:80/api/GetFeed")).toBe("HTTP/1.1 200 OK")
    // a Host header in UTF-8 is compared by the name it spells too: news。example。com is not blog's
    const encoder = new TextEncoder()
    const news = encoder.encode("news\u3002example\u3002com")
    expect(await statusForHostBytes(news, "http://blog.example.com/api/GetFeed")).toBe(
      "HTTP/1.1 400 Bad Request",
    )
    const blogInUtf8 = encoder.encode("blog\u3002example\u3002com")
    expect(await statusForHostBytes(blogInUtf8, "http://blog.example.com/api/GetFeed")).toBe(
      "HTTP/1.1 200 OK",
    )
  })

  it("routes an HTTP/2 request by its :authority; an HTTP/1.1 request without Host is 400", async () => {
    // h2c with prior knowledge (a proxy in front speaking HTTP/2 to Hamlet): no host header
    const client = http2.connect(`http://127.0.0.1:${server.port}`)
    try {
      const h2 = (authority: string) =>
        new Promise<number>((resolve, reject) => {
          const stream = client.request({ ":path": "/api/GetFeed", ":authority": authority })
          stream.on("response", (headers) => resolve(Number(headers[":status"])))
          stream.on("error", reject)
          stream.resume()
          stream.end()
        })
      expect(await h2(HOST)).toBe(200)
      expect(await h2("nobody.example.com")).toBe(404)
    } finally {
      client.close()
    }
    const status = await statusForRaw(
      new TextEncoder().encode("GET /api/GetFeed HTTP/1.1\r\nConnection: close\r\n\r\n"),
    )
    expect(status).toBe("HTTP/1.1 400 Bad Request")
  })

  it("refuses text Postgres cannot store with 400 and the field's path, writing nothing", async () => {
    const before = await itemCount()
    for (const title of ["a\u0000b", "lone \ud800 surrogate"]) {
      const response = await submit(JSON.stringify({ title }))
      expect(response.status).toBe(400)
      const { error } = await response.json()
      expect(error.code).toBe("bad_request")
      expect(error.issues[0].path).toBe("title")
    }
    expect((await server.call(HOST, "/api/GetItem?id=%00")).status).toBe(400)
    // %-escapes that are not UTF-8 are refused, naming the key, not read as U+FFFD
    const notUtf8 = await server.call(HOST, "/api/GetItem?id=%ff")
    expect(notUtf8.status).toBe(400)
    expect((await notUtf8.json()).error.issues).toEqual([{
      path: "id",
      message: "the query string is not valid UTF-8",
    }])
    expect((await server.call(HOST, "/api/GetItem?id=%C3%BC+x")).status).toBe(404) // ü x: valid, no such item
    // a % that starts no escape is kept as typed (URLSearchParams does), not called bad UTF-8
    expect((await server.call(HOST, "/api/GetItem?id=100%")).status).toBe(404)
    expect((await server.call(HOST, "/api/GetItem?id=50%25%zz")).status).toBe(404)
    expect(await itemCount()).toBe(before)
    expect((await submit(JSON.stringify({ title: "still fine" }))).status).toBe(200)
  })

  it("refuses a body that is not UTF-8 instead of storing replacement characters", async () => {
    const before = await itemCount()
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('{"title":"bad '),
      0xff,
      0xfe,
      ...new TextEncoder().encode('"}'),
    ])
    const response = await submit(bytes)
    expect(response.status).toBe(400)
    expect((await response.json()).error.message).toContain("UTF-8")
    expect(await itemCount()).toBe(before)
  })

  it("refuses input nested too deep to encode with 400, not a stack overflow", async () => {
    const deep = `{"title":"x","e":${"[".repeat(10_000)}${"]".repeat(10_000)}}`
    const response = await submit(deep)
    expect(response.status).toBe(400)
    expect((await response.json()).error.issues[0].message).toContain("nested deeper")
  })

  it("lists at most 50 issues, then how many more", async () => {
    const input: Record<string, unknown> = { title: "x" }
    for (let i = 0; i < 500; i++) input[`k${i}`] = 1
    const response = await submit(JSON.stringify(input))
    expect(response.status).toBe(400)
    const { error } = await response.json()
    expect(error.issues).toHaveLength(51)
    expect(error.issues[50].message).toBe("and 450 more issues")
  })

  it("answers 405 with the methods allowed", async () => {
    const get = await server.call(HOST, "/api/SubmitItem")
    expect(get.status).toBe(405)
    expect(get.headers.get("allow")).toBe("POST")
    const put = await server.call(HOST, "/api/GetFeed", { method: "PUT", body: "{}" })
    expect(put.status).toBe(405)
    expect(put.headers.get("allow")).toBe("GET, HEAD, POST")
    const onFile = await server.call(HOST, "/index.html", { method: "POST", body: "{}" })
    expect(onFile.status).toBe(405)
    expect(onFile.headers.get("allow")).toBe("GET, HEAD")
    expect((await server.call(HOST, "/no-such-file.html", { method: "POST", body: "{}" })).status).toBe(404)
  })

  it("answers a URL over 16 KiB with 414 and a JSON error, not the HTTP server's bare 400", async () => {
    const response = await server.call(HOST, `/api/GetItem?id=${"a".repeat(20_000)}`)
    expect(response.status).toBe(414)
    expect((await response.json()).error.message).toMatch(/POST body/)
  })

  it("a handler taking no input refuses an array, a string or a key instead of ignoring them", async () => {
    for (const body of ["[1,2]", '"feed"', '{"limit":5}']) {
      const response = await server.call(HOST, "/api/GetFeed", { method: "POST", body })
      expect(response.status).toBe(400)
      expect((await response.json()).error.code).toBe("bad_request")
    }
    const keyed = await server.call(HOST, "/api/GetFeed?limit=5")
    expect((await keyed.json()).error.issues).toEqual([{ path: "limit", message: expect.any(String) }])
    expect((await server.call(HOST, "/api/GetFeed")).status).toBe(200)
    expect((await server.call(HOST, "/api/GetFeed", { method: "POST", body: "{}" })).status).toBe(200)
  })

  it("answers 408 when a body stops arriving, instead of holding the connection", async () => {
    const socket = connect(server.port, "127.0.0.1")
    const answer = new Promise<string>((resolve) => {
      let text = ""
      socket.on("data", (chunk) => {
        text += chunk.toString()
        if (text.includes("\r\n\r\n")) resolve(text) // the status line and headers are enough
      })
      socket.on("close", () => resolve(text))
      socket.on("end", () => resolve(text))
    })
    socket.write(
      `POST /api/SubmitItem HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"ti`,
    )
    const started = Date.now()
    const text = await Promise.race([answer, new Promise<string>((r) => setTimeout(() => r(""), 15_000))])
    socket.destroy()
    expect(text).toMatch(/^HTTP\/1.1 408/)
    expect(Date.now() - started).toBeLessThan(14_000)
  }, 20_000)

  it("refuses over the bus: bytes that are not UTF-8, a NUL in the envelope, an idempotency key over 256", async () => {
    const notUtf8 = await overBus(new Uint8Array([0x7b, 0xff, 0x7d]))
    expect(notUtf8.error.code).toBe("bad_request")
    const nul = await overBus(encodeJson({ id: "a\u0000b", input: { title: "x" } }))
    expect(nul.error.code).toBe("bad_request")
    expect(nul.error.issues[0].path).toBe("id")
    const longKey = await overBus(
      encodeJson({ id: "k", input: { title: "x" }, meta: { idempotencyKey: "k".repeat(20_000) } }),
    )
    expect(longKey.error.code).toBe("bad_request")
    expect(longKey.error.issues[0].path).toBe("meta.idempotencyKey")
  })

  it("answers an idempotency key reused for another request with a conflict, not the other reply", async () => {
    const key = `reuse-${crypto.randomUUID()}`
    const send = (handler: string, input: unknown) =>
      overBus(encodeJson({ id: crypto.randomUUID(), input, meta: { idempotencyKey: key } }), handler)
    const first = await send("SubmitItem", { title: "once" })
    expect(first.ok).toBe(true)
    expect(await send("SubmitItem", { title: "once" })).toEqual(first) // a retry
    const otherInput = await send("SubmitItem", { title: "twice" })
    expect(otherInput.error.code).toBe("conflict")
    const otherHandler = await send("DeleteItem", { id: first.output.id })
    expect(otherHandler.error.code).toBe("conflict")
    const items = await server
      .sql`select title from horatio.microblog_item where host = ${HOST} and id = ${first.output.id}`
    expect(items.map((r) => r.title)).toEqual(["once"]) // still there: the delete did not run
  })
})

describe("replies too large for the bus", () => {
  const HOST_BIG = "big.reply.test"
  const running = serveTempProject({
    name: "bigreply",
    hosts: [HOST_BIG],
    projectTs: `import { Schema } from "effect"
import { defineEvent, defineProject } from ${MOD}
export const Made = defineEvent("Made", Schema.Struct({ n: Schema.Number }), () => "made")
export default defineProject({ name: "bigreply", events: [Made] })
`,
    api: {
      Big: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
export default defineQuery({
  name: "Big", input: Schema.Struct({ n: Schema.NumberFromString }), output: Schema.String,
  handle: (input) => Effect.succeed("x".repeat(input.n)),
})
`,
      MakeBig: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Made } from "../project.ts"
export default defineCommand({
  name: "MakeBig", input: Schema.Struct({ n: Schema.Number }), output: Schema.String,
  handle: (input, ctx) => ctx.emit(Made, input).pipe(Effect.as("x".repeat(input.n))),
})
`,
      Pay: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Made } from "../project.ts"
export default defineCommand({
  name: "Pay", input: Schema.Struct({ amount: Schema.BigIntFromString }), output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) => ctx.emit(Made, { n: Number(input.amount) }).pipe(Effect.as({ ok: true })),
})
`,
    },
  })

  it("keeps an idempotency key's retry working when the input decodes to values JSON cannot hold", async () => {
    // the key's digest is of the input as sent: a decoded bigint made it throw (500 every time)
    const pay = async () =>
      JSON.parse(decodeText(
        (await Effect.runPromise(
          running.server.bus.request(
            requestSubject("bigreply", HOST_BIG, "Pay"),
            encodeJson({
              id: crypto.randomUUID(),
              input: { amount: "12" },
              meta: { idempotencyKey: "pay-1" },
            }),
            { timeoutMs: 5_000 },
          ),
        )).data,
      ))
    expect(await pay()).toEqual({ ok: true, output: { ok: true } })
    expect(await pay()).toEqual({ ok: true, output: { ok: true } })
  })

  it("answers at once with a 500 that says why, and says a command's writes were committed", async () => {
    const started = Date.now()
    const query = await running.server.call(HOST_BIG, "/api/Big?n=2000000")
    expect(query.status).toBe(500)
    expect((await query.json()).error.message).toContain("more than the bus carries")
    const command = await running.server.call(HOST_BIG, "/api/MakeBig", {
      body: JSON.stringify({ n: 2_000_000 }),
    })
    expect(command.status).toBe(500)
    expect((await command.json()).error.message).toContain("writes were committed")
    expect(Date.now() - started).toBeLessThan(5_000) // not the handler's timeout
    const events = await running.server
      .sql`select count(*)::int as n from hamlet_events where host = ${HOST_BIG}`
    expect(events[0].n).toBe(1 + 1) // MakeBig's, and Pay's once
    expect((await running.server.call(HOST_BIG, "/api/Big?n=10")).status).toBe(200)
  })
})
