/**
 * The HTTP contract (DESIGN.md §1) end to end on the embedded defaults: a round trip per
 * handler of both sample projects, every error status, request ids, static files and the
 * operational endpoints. The `faulty` fixture project supplies the 500/503/504 cases.
 */
import { readFile } from "node:fs/promises"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestServer, type TestServer } from "../support/server.ts"

const CONFIG = "./test/fixtures/http-contract/config.json"
const BLOG = "blog.example.com"
const THEATRE = "theatre.example.com"
const FAULTY = "faulty.example.com"

let server: TestServer

// deno-lint-ignore no-explicit-any -- response bodies are checked field by field
type Json = any

const _post = async (host: string, handler: string, body: unknown, headers?: Record<string, string>) => {
  const res = await server.call(host, `/api/${handler}`, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  })
  return { status: res.status, headers: res.headers, body: (await res.json()) as Json }
}

const _get = async (host: string, path: string) => {
  const res = await server.call(host, path)
  const text = await res.text()
  return {
    status: res.status,
    headers: res.headers,
    text,
    body: (() => {
      try {
        return JSON.parse(text) as Json
      } catch {
        return undefined
      }
    })(),
  }
}

beforeAll(async () => {
  server = await startTestServer({ configPath: CONFIG })
})
afterAll(() => server?.close())

describe("round trip per handler", () => {
  it("horatio: SubmitItem returns an id and GetFeed lists items newest first", async () => {
    const first = await _post(BLOG, "SubmitItem", { title: "First", tags: ["news"] })
    const second = await _post(BLOG, "SubmitItem", {
      title: "Second",
      link: "https://example.org/x",
      extract: "an extract",
      ownerComment: "mine",
      tags: ["news", "deno"],
    })
    expect([first.status, second.status]).toEqual([200, 200])
    expect(first.body.id).toEqual(expect.any(String))
    const feed = await _get(BLOG, "/api/GetFeed")
    expect(feed.status).toBe(200)
    expect(feed.body.items.map((i: Json) => i.title)).toEqual(["Second", "First"])
    expect(feed.body.items[0]).toMatchObject({
      id: second.body.id,
      link: "https://example.org/x",
      extract: "an extract",
      ownerComment: "mine",
      tags: ["news", "deno"],
      commentCount: 0,
    })
    expect(Date.parse(feed.body.items[0].createdAt)).not.toBeNaN()
  })

  it("horatio: SubmitComment adds a comment that GetItem returns, and counts it", async () => {
    const item = await _post(BLOG, "SubmitItem", { title: "Commented" })
    const comment = await _post(BLOG, "SubmitComment", { itemId: item.body.id, text: "Nice", author: "ann" })
    expect(comment.status).toBe(200)
    const got = await _get(BLOG, `/api/GetItem?id=${item.body.id}`)
    expect(got.status).toBe(200)
    expect(got.body.item).toMatchObject({ id: item.body.id, title: "Commented", commentCount: 1 })
    expect(got.body.comments).toEqual([
      { id: comment.body.id, text: "Nice", author: "ann", createdAt: expect.any(String) },
    ])
  })

  it("horatio: text beyond ASCII comes back as it was sent, as UTF-8 JSON", async () => {
    const title = 'Grüße — 漢字 😀 \u2028 "quoted" \\ back'
    const item = await _post(BLOG, "SubmitItem", { title })
    const got = await _get(BLOG, `/api/GetItem?id=${item.body.id}`)
    expect(got.status).toBe(200)
    expect(got.headers.get("content-type")).toBe("application/json; charset=utf-8")
    expect(got.body.item.title).toBe(title)
  })

  it("horatio: SubmitComment on an unknown item is 404", async () => {
    const res = await _post(BLOG, "SubmitComment", { itemId: "nope", text: "hello" })
    expect(res.status).toBe(404)
    expect(res.body.error.code).toBe("not_found")
  })

  it("horatio: DeleteItem soft-deletes: the item leaves the feed and GetItem is 404", async () => {
    const item = await _post(BLOG, "SubmitItem", { title: "Doomed" })
    const deleted = await _post(BLOG, "DeleteItem", { id: item.body.id })
    expect(deleted).toMatchObject({ status: 200, body: { id: item.body.id, deleted: true } })
    const feed = await _get(BLOG, "/api/GetFeed")
    expect(feed.body.items.map((i: Json) => i.id)).not.toContain(item.body.id)
    expect((await _get(BLOG, `/api/GetItem?id=${item.body.id}`)).status).toBe(404)
    const [row] = await server.sql`select deleted_at from horatio.microblog_item where id = ${item.body.id}`
    expect(row.deleted_at).toBeInstanceOf(Date)
    expect((await _post(BLOG, "DeleteItem", { id: "missing" })).status).toBe(404)
  })

  it("othello: CreatePost then GetPosts lists it", async () => {
    const post = await _post(THEATRE, "CreatePost", { title: "Opening night", body: "Tickets!" })
    expect(post.status).toBe(200)
    const posts = await _get(THEATRE, "/api/GetPosts")
    expect(posts.body.posts).toEqual([
      { id: post.body.id, title: "Opening night", body: "Tickets!", createdAt: expect.any(String) },
    ])
  })

  it("othello: UpdateProfile upserts and GetProfile reads it back", async () => {
    expect((await _post(THEATRE, "UpdateProfile", { id: "iago", name: "Iago" })).status).toBe(200)
    await _post(THEATRE, "UpdateProfile", { id: "iago", name: "Iago", bio: "Ensign", roles: ["villain"] })
    const profile = await _get(THEATRE, "/api/GetProfile?id=iago")
    expect(profile.body).toEqual({
      id: "iago",
      name: "Iago",
      bio: "Ensign",
      roles: ["villain"],
      updatedAt: expect.any(String),
    })
    expect((await _get(THEATRE, "/api/GetProfile?id=desdemona")).status).toBe(404)
  })

  it("othello: UpdateProfile keeps the fields it leaves out; a null bio clears it", async () => {
    await _post(THEATRE, "UpdateProfile", {
      id: "cassio",
      name: "Cassio",
      bio: "Lieutenant",
      roles: ["lead"],
    })
    expect((await _post(THEATRE, "UpdateProfile", { id: "cassio", name: "Michael Cassio" })).status).toBe(200)
    expect((await _get(THEATRE, "/api/GetProfile?id=cassio")).body).toMatchObject({
      name: "Michael Cassio",
      bio: "Lieutenant",
      roles: ["lead"],
    })
    await _post(THEATRE, "UpdateProfile", { id: "cassio", name: "Cassio", bio: null })
    expect((await _get(THEATRE, "/api/GetProfile?id=cassio")).body).toMatchObject({
      bio: null,
      roles: ["lead"],
    })
  })
})

describe("error statuses", () => {
  it("malformed JSON is 400 bad_request", async () => {
    const res = await _post(BLOG, "SubmitItem", "{not json")
    expect(res.status).toBe(400)
    expect(res.body.error.code).toBe("bad_request")
  })

  it("input failing the Schema is 400 with issue paths", async () => {
    const res = await _post(BLOG, "SubmitItem", { title: "", tags: ["Not A Tag"] })
    expect(res.status).toBe(400)
    const paths = res.body.error.issues.map((i: Json) => i.path)
    expect(paths).toEqual(expect.arrayContaining(["title", "tags.0"]))
    for (const issue of res.body.error.issues) expect(issue.message).toEqual(expect.any(String))
    const excess = await _post(BLOG, "SubmitItem", { title: "ok", colour: "red" })
    expect(excess.status).toBe(400)
    expect(excess.body.error.issues.map((i: Json) => i.path)).toContain("colour")
  })

  it("a handler that takes no input refuses anything but {} — null, an array, a key — and takes {} or no body", async () => {
    for (const body of ["null", "[]", '{"a":1}', '"x"']) {
      const res = await _post(THEATRE, "GetPosts", body)
      expect([body, res.status, res.body.error?.code]).toEqual([body, 400, "bad_request"])
    }
    for (const body of ["{}", ""]) expect((await _post(THEATRE, "GetPosts", body)).status).toBe(200)
  })

  it.each([
    "under_score.com",
    "a..b.com",
    "-a.com",
    "a b.com",
    "host:port",
    "blog.example.com:99999",
    "[::1]:80",
    `${"a".repeat(64)}.com`,
  ])(
    "a bad Host header %j is 400",
    async (host) => {
      const res = await _get(host, "/api/GetFeed")
      expect(res.status).toBe(400)
      expect(res.body.error.code).toBe("bad_request")
      // the server mints a UUID when the request brought none
      expect(res.headers.get("x-request-id")).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      )
    },
  )

  it("an unknown host is a 404 JSON error, never another tenant's data", async () => {
    const res = await _get("unknown.example.com", "/api/GetFeed")
    expect(res.status).toBe(404)
    expect(res.body.error.code).toBe("not_found")
    expect(res.text).not.toContain("items")
  })

  it("an unknown handler is 404, and GetFeed on theatre.example.com is 404", async () => {
    expect((await _post(BLOG, "NoSuchHandler", {})).status).toBe(404)
    const res = await _get(THEATRE, "/api/GetFeed")
    expect(res.status).toBe(404)
    expect(res.body.error.code).toBe("not_found")
  })

  it("a body over the project's 256 KiB limit is 413", async () => {
    const res = await _post(BLOG, "SubmitItem", { title: "big", extract: "x".repeat(300 * 1024) })
    expect(res.status).toBe(413)
  })

  it("a body within the limit is judged as sent: numbers are not re-written longer (9e20) into 'too large'", async () => {
    const body = `{"title":"x","tags":[${Array(40_000).fill("9e20").join(",")}]}` // 200 KB
    expect(body.length).toBeLessThan(256 * 1024)
    const res = await _post(BLOG, "SubmitItem", body)
    expect(res.status).toBe(400)
    expect(res.body.error.message).not.toMatch(/too large/)
    expect(res.body.error.issues.map((i: { path: string }) => i.path)).toContain("tags.0")
  })

  it("a chunked body (no declared length) is read up to the limit: 200 under it, 413 over it", async () => {
    const chunked = { "transfer-encoding": "chunked" }
    expect((await _post(BLOG, "SubmitItem", { title: "chunked" }, chunked)).status).toBe(200)
    const big = await _post(BLOG, "SubmitItem", { title: "big", extract: "x".repeat(300 * 1024) }, chunked)
    expect(big.status).toBe(413)
  })

  it("GET on a command is 405", async () => {
    expect((await _get(BLOG, "/api/SubmitItem")).status).toBe(405)
  })

  it("a handler defect is 500 with a requestId and no stack or message", async () => {
    const res = await _post(FAULTY, "Boom", {}, { "x-request-id": "boom-req-1" })
    expect(res.status).toBe(500)
    expect(res.body.error).toEqual({ code: "internal", message: "internal error", requestId: "boom-req-1" })
    const text = JSON.stringify(res.body)
    expect(text).not.toMatch(/boom:|secret|stack|\.ts:\d+/)
  })

  it("a query that emits an event (past its type) is 500, and nothing reaches the log", async () => {
    const res = await _get(FAULTY, "/api/SneakyEmit?name=yorick")
    expect(res.status).toBe(500)
    expect(res.body.error.code).toBe("internal")
    const rows = await server.sql`select count(*)::int as n from hamlet_events where stream = 'name-yorick'`
    expect(rows[0].n).toBe(0)
  })

  it("a Schema.Date input and output travel as ISO strings; the handler sees a Date", async () => {
    const res = await _post(FAULTY, "Dated", { publishedOn: "1965-08-01T00:00:00.000Z" })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ publishedOn: "1965-08-02T00:00:00.000Z", year: 1965, isDate: true })
    const bad = await _post(FAULTY, "Dated", { publishedOn: "not a date" })
    expect(bad.status).toBe(400)
    expect(bad.body.error.issues.map((i: Json) => i.path)).toEqual(["publishedOn"])
    // a Date is not JSON: an object where the ISO string belongs is refused, not taken
    expect((await _post(FAULTY, "Dated", { publishedOn: {} })).status).toBe(400)
  })

  it('an output is its Schema\'s JSON (NaN as "NaN"); one that does not match is a 500 saying so', async () => {
    const nan = await _post(FAULTY, "BadOutput", { kind: "nan" })
    expect(nan.status).toBe(200)
    expect(nan.body).toEqual({ n: "NaN" }) // Schema.Number's JSON form, as in the log; never a silent null
    for (const kind of ["finite-nan", "string"]) {
      const res = await _post(FAULTY, "BadOutput", { kind }, { "x-request-id": `bad-output-${kind}` })
      expect(res.status).toBe(500)
      expect(res.body.error).toEqual({
        code: "internal",
        message: "BadOutput's output does not match its output Schema",
        requestId: `bad-output-${kind}`,
      })
    }
  })

  it("a handler over its time limit is 504", async () => {
    const started = Date.now()
    const res = await _get(FAULTY, "/api/Sleepy")
    expect(res.status).toBe(504)
    expect(res.body.error.code).toBe("timeout")
    expect(Date.now() - started).toBeLessThan(1_900)
  })

  it("starting a stream that already exists is 409 conflict, and nothing is written twice", async () => {
    const first = await _post(FAULTY, "Claim", { name: "ophelia" })
    expect(first.status).toBe(200)
    const again = await _post(FAULTY, "Claim", { name: "ophelia" })
    expect(again.status).toBe(409)
    expect(again.body.error.code).toBe("conflict")
    const rows = await server.sql`select count(*)::int as n from hamlet_events where stream = 'name-ophelia'`
    expect(rows[0].n).toBe(1)
  })

  it("a write whose transaction Postgres aborted is never reported as done", async () => {
    const res = await _post(FAULTY, "Swallow", { name: "yorick" })
    expect(res.status).toBe(500)
    const rows = await server
      .sql`select count(*)::int as n from hamlet_events where stream = 'swallow-yorick'`
    expect(rows[0].n).toBe(0)
    expect((await _post(FAULTY, "Claim", { name: "yorick" })).status).toBe(200)
  })

  it("a full mailbox is 503 with Retry-After; the accepted commands still succeed", async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => _post(FAULTY, "Slow", {})))
    const rejected = results.filter((r) => r.status === 503)
    const accepted = results.filter((r) => r.status === 200)
    expect(rejected.length).toBeGreaterThan(0)
    expect(accepted.length).toBeGreaterThan(0)
    expect(rejected.length + accepted.length).toBe(20)
    for (const r of rejected) {
      expect(r.headers.get("retry-after")).toMatch(/^\d+$/)
      expect(r.body.error.code).toBe("overloaded")
    }
    for (const r of accepted) expect(r.body).toEqual({ done: true })
  })
})

describe("request ids", () => {
  it("every response has an x-request-id, and a valid incoming one is echoed", async () => {
    const responses = await Promise.all([
      server.call(BLOG, "/api/GetFeed"),
      server.call(BLOG, "/"),
      server.call(BLOG, "/missing.txt"),
      server.call("unknown.example.com", "/"),
      server.call(BLOG, "/healthz"),
    ])
    for (const res of responses) {
      await res.body?.cancel()
      expect(res.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._:-]+$/)
    }
    const ids = responses.map((r) => r.headers.get("x-request-id"))
    expect(new Set(ids).size).toBe(ids.length)
    const echoed = await _post(BLOG, "SubmitItem", { title: "traced" }, { "x-request-id": "trace-123" })
    expect(echoed.headers.get("x-request-id")).toBe("trace-123")
  })
})

describe("static files", () => {
  it("GET / serves the host's index.html", async () => {
    const res = await _get(BLOG, "/")
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^text\/html/)
    expect(res.text).toBe(await readFile("projects/horatio/hosts/blog.example.com/index.html", "utf8"))
    expect((await _get("news.example.com", "/")).text).toContain("news.example.com")
  })

  it.each([
    "/../../config.json",
    "/%2e%2e/%2e%2e/config.json",
    "/..%2fproject.ts",
    "/..%2f..%2fproject.ts",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fconfig.json",
    "/..%5c..%5cproject.ts",
    "/index.html%00.txt",
  ])("a traversal attempt %s never serves a file outside the host dir", async (path) => {
    const res = await _get(BLOG, path)
    expect(res.status).toBe(404)
    expect(res.text).not.toMatch(/defineProject|"projects"/)
  })
})

describe("operational endpoints", () => {
  it("/healthz is 200 and /readyz is 200 with ready true", async () => {
    expect((await _get(BLOG, "/healthz")).status).toBe(200)
    const ready = await _get(BLOG, "/readyz")
    expect(ready).toMatchObject({ status: 200, body: { ready: true } })
  })

  it("/metrics is Prometheus text with hamlet_http_requests_total", async () => {
    const res = await _get(BLOG, "/metrics")
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/)
    expect(res.text).toMatch(/^hamlet_http_requests_total\{project="horatio",status="200"\} \d+$/m)
  })

  it("/metrics counts committed command batches and the commands they carried (the group commit)", async () => {
    const counter = (text: string, name: string) =>
      Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1])
    const read = async () => {
      const { text } = await _get(BLOG, "/metrics")
      return {
        batches: counter(text, "hamlet_command_batches_total"),
        commands: counter(text, "hamlet_batched_commands_total"),
      }
    }
    const before = await read()
    expect(Number.isInteger(before.batches) && Number.isInteger(before.commands)).toBe(true)
    const statuses = await Promise.all(
      [1, 2, 3, 4, 5, 6].map(async (i) =>
        (await _post(BLOG, "SubmitItem", { title: `counted ${i}` })).status
      ),
    )
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200])
    const after = await read()
    expect(after.commands - before.commands).toBe(6)
    expect(after.batches - before.batches).toBeGreaterThanOrEqual(1)
    expect(after.batches - before.batches).toBeLessThanOrEqual(6)
  })
})
