/**
 * Request collapsing at the ingress (src/ingress/collapse.ts): identical queries that reach
 * the ingress in one turn of the event loop go to the host's actor as one bus request, and
 * each caller still gets its own response (its own x-request-id, errors naming its own
 * request). Different inputs, `coalesce: false` queries and commands are never collapsed, and
 * a query arriving after the shared request left sends its own. Checked on the in-process bus
 * and on NATS, by counting the request messages a plain subscriber sees.
 */
import { Effect, Exit, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { Bus } from "../../src/bus/bus.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { makeCollapse } from "../../src/ingress/collapse.ts"
import { makeIngress } from "../../src/ingress/ingress.ts"
import { Supervisor } from "../../src/actors/supervisor.ts"
import { Database } from "../../src/store/database.ts"
import { serveTempProject } from "../support/project-server.ts"
import { checkService } from "../support/services.ts"
import { MOD, notesProject, type TempProjectSpec } from "../support/temp-project.ts"

const HOST = "reads.collapse.test"
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

describe("makeCollapse", () => {
  it("shares one send among callers of one turn, per key; a later caller sends again", async () => {
    const collapse = makeCollapse()
    const sent: Array<string> = []
    const send = (key: string) => () => {
      sent.push(key)
      return Promise.resolve(`${key}#${sent.length}`)
    }
    const first = await Promise.all([
      collapse("a", send("a")),
      collapse("a", send("a")),
      collapse("b", send("b")),
    ])
    expect(first).toEqual(["a#1", "a#1", "b#2"])
    expect(await collapse("a", send("a"))).toBe("a#3")
  })

  it("closes a key before sending: a caller arriving while the send is under way is not joined to it", async () => {
    const collapse = makeCollapse()
    let sends = 0
    let release = () => {}
    const slow = () => {
      sends++
      return new Promise<number>((resolve) => release = () => resolve(sends))
    }
    const first = collapse("k", slow)
    await nextTurn()
    expect(sends).toBe(1)
    const second = collapse("k", () => Promise.resolve(++sends))
    release()
    expect(await first).toBe(1)
    expect(await second).toBe(2)
  })

  it("hands a failed send's error to every caller that shared it, also when the send throws", async () => {
    const collapse = makeCollapse()
    const failing = () => Promise.reject(new Error("bus down"))
    const results = await Promise.allSettled([collapse("k", failing), collapse("k", failing)])
    const throwing = (): Promise<never> => {
      throw new Error("bus down")
    }
    results.push(...await Promise.allSettled([collapse("t", throwing), collapse("t", throwing)]))
    expect(results.map((r) => r.status === "rejected" && (r.reason as Error).message)).toEqual([
      "bus down",
      "bus down",
      "bus down",
      "bus down",
    ])
  })
})

const notes = notesProject({
  name: "collapsing",
  hosts: [HOST],
  projection: "(e, db) => db.insert(Note, { id: e.data.id, text: e.data.text })",
})
const spec: TempProjectSpec = {
  ...notes,
  api: {
    ...notes.api,
    Count: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
import { Note } from "../project.ts"
export default defineQuery({
  name: "Count",
  input: Schema.Struct({ tag: Schema.optional(Schema.String), delayMs: Schema.optional(Schema.NumberFromString) }),
  output: Schema.Struct({ n: Schema.Number, tag: Schema.String }),
  // reads the count, says so (the test waits for it), then waits: a run still under way has read
  // before what came since
  handle: (input, ctx) =>
    ctx.db.count(Note).pipe(
      Effect.tap(() => Effect.sync(() => (globalThis as any).collapseTestReads = ((globalThis as any).collapseTestReads ?? 0) + 1)),
      Effect.tap(() => Effect.sleep(input.delayMs ?? 0)),
      Effect.map((n) => ({ n, tag: input.tag ?? "" })),
    ),
})
`,
    CountAlone: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
import { Note } from "../project.ts"
export default defineQuery({
  name: "CountAlone",
  coalesce: false,
  input: Schema.Struct({}),
  output: Schema.Struct({ n: Schema.Number }),
  handle: (_input, ctx) => ctx.db.count(Note).pipe(Effect.map((n) => ({ n }))),
})
`,
    Broken: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
export default defineQuery({
  name: "Broken", input: Schema.Struct({}), output: Schema.Struct({}),
  handle: () => Effect.die(new Error("broken on purpose")),
})
`,
  },
}

const hasNats = await checkService("nats")

const describeCollapsing = (bus: "memory" | "nats") => () => {
  const running = serveTempProject(spec, { bus })
  const scope = Effect.runSync(Scope.make())
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

  /** The ingress in this process, so that a test's requests surely arrive in one turn. */
  const ingress = () =>
    Effect.runPromise(
      makeIngress.pipe(
        Effect.provideService(Bus, running.server.bus),
        Effect.provideService(Supervisor, running.server.supervisor),
        Effect.provideService(Database, { sql: running.server.sql, kind: "pglite", url: undefined }),
      ),
    )

  /** Counts the request messages published to `handler`'s subject from now on. */
  const countRequests = async (handler: string) => {
    const seen = { count: 0 }
    await Effect.runPromise(
      running.server.bus.subscribe(requestSubject("collapsing", HOST, handler), () => void seen.count++).pipe(
        Scope.provide(scope),
      ),
    )
    await Effect.runPromise(running.server.bus.flush)
    return seen
  }

  const request = (path: string, init: { method?: string; body?: string; id?: string } = {}) =>
    new Request(`http://${HOST}${path}`, {
      method: init.method ?? "GET",
      body: init.body,
      headers: { host: HOST, ...(init.id ? { "x-request-id": init.id } : {}) },
    })

  it("identical queries of one turn go out as one bus request; each caller gets its own response", async () => {
    const handle = await ingress()
    const seen = await countRequests("Count")
    const ids = Array.from({ length: 8 }, (_, i) => `collapse-${i}`)
    const responses = await Promise.all(ids.map((id) => handle(request("/api/Count?tag=x", { id }))))
    expect(responses.map((r) => r.status)).toEqual(ids.map(() => 200))
    expect(responses.map((r) => r.headers.get("x-request-id"))).toEqual(ids)
    const bodies = await Promise.all(responses.map((r) => r.json()))
    expect(bodies).toEqual(ids.map(() => ({ n: 0, tag: "x" })))
    expect(seen.count).toBe(1)
    // a POST with the same input is the same query
    const [get, post] = await Promise.all([
      handle(request("/api/Count?tag=y")),
      handle(request("/api/Count", { method: "POST", body: '{"tag":"y"}' })),
    ])
    expect([await get.json(), await post.json()]).toEqual([{ n: 0, tag: "y" }, { n: 0, tag: "y" }])
    expect(seen.count).toBe(2)
  })

  it("different inputs, coalesce: false queries and commands each send their own request", async () => {
    const handle = await ingress()
    const counted = await countRequests("Count")
    const alone = await countRequests("CountAlone")
    const adds = await countRequests("AddNote")
    const tags = await Promise.all(["a", "b", "c"].map((tag) => handle(request(`/api/Count?tag=${tag}`))))
    expect((await Promise.all(tags.map((r) => r.json()))).map((b) => b.tag)).toEqual(["a", "b", "c"])
    expect(counted.count).toBe(3)
    const lone = await Promise.all([1, 2, 3].map(() => handle(request("/api/CountAlone"))))
    expect(lone.map((r) => r.status)).toEqual([200, 200, 200])
    expect(alone.count).toBe(3)
    const writes = await Promise.all(
      [1, 2].map(() => handle(request("/api/AddNote", { method: "POST", body: '{"text":"x"}' }))),
    )
    expect(writes.map((r) => r.status)).toEqual([200, 200])
    expect(adds.count).toBe(2)
  })

  it("a query arriving after a write's reply sees the write: it never joins a request sent before it", async () => {
    const handle = await ingress()
    const path = "/api/Count?tag=w&delayMs=1000"
    const before = (await (await handle(request(path))).json()).n as number
    // a read under way (it has read, it waits), then a write, then an identical read
    const reads = () => (globalThis as { collapseTestReads?: number }).collapseTestReads ?? 0
    const readsBefore = reads()
    const earlier = handle(request(path))
    while (reads() === readsBefore) await new Promise((resolve) => setTimeout(resolve, 5))
    const write = await handle(request("/api/AddNote", { method: "POST", body: '{"text":"x"}' }))
    expect(write.status).toBe(200)
    const later = handle(request(path))
    expect((await (await earlier).json()).n).toBe(before)
    expect((await (await later).json()).n).toBe(before + 1)
  })

  it("a shared error names each caller's own request", async () => {
    const handle = await ingress()
    const seen = await countRequests("Broken")
    const ids = ["broken-a", "broken-b", "broken-c"]
    const responses = await Promise.all(ids.map((id) => handle(request("/api/Broken", { id }))))
    expect(responses.map((r) => r.status)).toEqual([500, 500, 500])
    const errors = await Promise.all(responses.map(async (r) => (await r.json()).error))
    expect(errors.map((e) => [e.code, e.requestId])).toEqual(ids.map((id) => ["internal", id]))
    expect(seen.count).toBe(1)
  })
}

describe("request collapsing at the ingress, in-process bus", describeCollapsing("memory"))
// skipped only when NATS is unreachable on a dev machine; .ci/run (HAMLET_REQUIRE_SERVICES=1) fails instead
describe.skipIf(!hasNats)("request collapsing at the ingress, NATS", describeCollapsing("nats"))
