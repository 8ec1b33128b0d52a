/**
 * Read batching per host (src/actors/query-batch.ts): identical concurrent queries share one
 * run, `coalesce: false` and different inputs do not, a slow batch does not block the
 * host's other reads, and a query never shares a run that started before it was sent — so
 * it always sees writes committed before it.
 */
import { describe, expect, it } from "vitest"
import { serveTempProject } from "../support/project-server.ts"
import { checkService } from "../support/services.ts"
import { MOD, type TempProjectSpec } from "../support/temp-project.ts"

const HOST = "reads.batch.test"

/** `runs` counts handler runs in this process; `n` is the host's note count when the run read it. */
const slowCount = (name: string, coalesce: boolean) =>
  `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
import { Note } from "../project.ts"
let runs = 0
export default defineQuery({
  name: "${name}",
  coalesce: ${coalesce},
  input: Schema.Struct({ tag: Schema.optional(Schema.String), delayMs: Schema.optional(Schema.NumberFromString) }),
  output: Schema.Struct({ n: Schema.Number, run: Schema.Number, tag: Schema.String }),
  handle: (input, ctx) =>
    Effect.gen(function* () {
      const run = ++runs
      const n = yield* ctx.db.count(Note)
      yield* Effect.sleep(input.delayMs ?? 150)
      return { n, run, tag: input.tag ?? "" }
    }),
})
`

const spec: TempProjectSpec = {
  name: "reader",
  hosts: [HOST],
  projectTs: `import { Schema } from "effect"
import { defineEvent, defineModel, defineProject, defineProjection } from ${MOD}
export const Note = defineModel("note", { id: Schema.String })
export const Noted = defineEvent("Noted", Schema.Struct({ id: Schema.String }), (e) => e.id, { startsStream: true })
export default defineProject({
  name: "reader",
  models: [Note],
  events: [Noted],
  projections: [defineProjection(Noted, (e, db) => db.insert(Note, { id: e.data.id }))],
})
`,
  api: {
    Count: slowCount("Count", true),
    CountAlone: slowCount("CountAlone", false),
    Broken: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
import { Note } from "../project.ts"
// Postgres refuses a NUL byte in text: a database error in the middle of a read batch
export default defineQuery({
  name: "Broken", input: Schema.Struct({}), output: Schema.Struct({ found: Schema.Boolean }),
  handle: (_input, ctx) => ctx.db.get(Note, "bad\\u0000id").pipe(Effect.map((row) => ({ found: row !== undefined }))),
})
`,
    AddNote: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Noted } from "../project.ts"
export default defineCommand({
  name: "AddNote", input: Schema.Struct({}), output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (_input, ctx) => ctx.emit(Noted, { id: crypto.randomUUID() }).pipe(Effect.as({ ok: true })),
})
`,
  },
}

interface CountReply {
  readonly n: number
  readonly run: number
  readonly tag: string
}

const hasPostgres = await checkService("postgres")

const describeReadBatches = (store: "pglite" | "postgres") => () => {
  const running = serveTempProject(spec, { store })

  const count = async (handler: string, query = ""): Promise<CountReply> => {
    const response = await running.server.call(HOST, `/api/${handler}${query}`)
    expect(response.status).toBe(200)
    return await response.json() as CountReply
  }

  it("identical concurrent queries share runs; every caller gets the full reply", async () => {
    const replies = await Promise.all(Array.from({ length: 12 }, () => count("Count")))
    const runs = new Set(replies.map((r) => r.run))
    // two batches may already be in flight when the rest arrive; the rest share one run
    expect(runs.size).toBeLessThanOrEqual(3)
    expect(replies.every((r) => r.n === 0 && r.tag === "")).toBe(true)
  })

  it("does not share runs across different inputs, nor for a query with coalesce: false", async () => {
    const tagged = await Promise.all(Array.from({ length: 6 }, (_, i) => count("Count", `?tag=t${i}`)))
    expect(tagged.map((r) => r.tag)).toEqual(["t0", "t1", "t2", "t3", "t4", "t5"])
    expect(new Set(tagged.map((r) => r.run)).size).toBe(6)
    const alone = await Promise.all(Array.from({ length: 6 }, () => count("CountAlone")))
    expect(new Set(alone.map((r) => r.run)).size).toBe(6)
  })

  it("a query failing in the store fails alone; the rest of its batch is answered", async () => {
    const [broken, ...others] = await Promise.all([
      running.server.call(HOST, "/api/Broken"),
      ...Array.from({ length: 5 }, (_, i) => running.server.call(HOST, `/api/Count?tag=b${i}&delayMs=20`)),
    ])
    expect(broken.status).toBe(500)
    expect((await broken.json()).error.code).toBe("internal")
    expect(others.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
    expect((await Promise.all(others.map((r) => r.json()))).map((r) => r.tag)).toEqual([
      "b0",
      "b1",
      "b2",
      "b3",
      "b4",
    ])
  })

  // the slow handler sleeps without holding a connection: this holds on PGlite's single one too
  it("a slow query does not hold up the host's other reads", async () => {
    const slow = count("Count", "?tag=slow&delayMs=2000")
    await new Promise((resolve) => setTimeout(resolve, 100))
    const started = Date.now()
    const quick = await count("Count", "?tag=quick&delayMs=1")
    // waits for the slow batch to count as slow (tens of ms), not for it to finish (2 s)
    expect(Date.now() - started).toBeLessThan(1000)
    expect(quick.tag).toBe("quick")
    expect((await slow).tag).toBe("slow")
  })

  it("a query sent after a write's reply sees it, even while an identical query is running", async () => {
    const before = (await count("Count", "?delayMs=10")).n
    const slow = count("Count", "?delayMs=400") // reads the count, then sleeps
    await new Promise((resolve) => setTimeout(resolve, 100))
    const write = await running.server.call(HOST, "/api/AddNote", { body: "{}" })
    expect(write.status).toBe(200)
    const after = await count("Count", "?delayMs=400")
    expect((await slow).n).toBe(before)
    expect(after.n).toBe(before + 1)
  })
}

describe("read batches and coalesced queries on pglite", describeReadBatches("pglite"))
// skipped only when Postgres is unreachable on a dev machine; .ci/run (HAMLET_REQUIRE_SERVICES=1) fails instead
describe.skipIf(!hasPostgres)(
  "read batches and coalesced queries on postgres",
  describeReadBatches("postgres"),
)
