/**
 * What a handler sees of its JSON input is what the log keeps: a `-0` arrives as 0 (the log's
 * JSON has no -0), and a `Schema.Date` outside the years 1–9999 (which ISO-8601 text and
 * Postgres' timestamptz do not both carry) is refused with 400, over HTTP and over the bus.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { decodeText } from "../../src/bus/envelope.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { serveTempProject } from "../support/project-server.ts"
import { MOD } from "../support/temp-project.ts"

const HOST = "values.example.com"

describe("input values a handler sees and the log keeps", () => {
  const running = serveTempProject({
    name: "inputs",
    hosts: [HOST],
    projectTs: `import { Effect, Schema } from "effect"
import { defineEvent, defineModel, defineProject, defineProjection } from ${MOD}
export const Entry = defineModel("entry", { id: Schema.String, day: Schema.Date })
export const Dated = defineEvent("Dated", Schema.Struct({ id: Schema.String, day: Schema.Date }), (e) => e.id)
export const Measured = defineEvent("Measured", Schema.Struct({ n: Schema.Number, more: Schema.Array(Schema.Number) }), () => "measures")
export default defineProject({
  name: "inputs",
  models: [Entry],
  events: [Dated, Measured],
  projections: [defineProjection(Dated, (e, db) => db.upsert(Entry, e.data))],
})
`,
    api: {
      RecordDate: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Dated } from "../project.ts"
export default defineCommand({
  name: "RecordDate",
  input: Schema.Struct({ id: Schema.String, day: Schema.Date, alsoOn: Schema.optional(Schema.Array(Schema.Date)) }),
  output: Schema.Struct({ year: Schema.Number }),
  handle: (input, ctx) =>
    ctx.emit(Dated, { id: input.id, day: input.day }).pipe(Effect.as({ year: input.day.getUTCFullYear() })),
})
`,
      ListEntries: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
import { Entry } from "../project.ts"
export default defineQuery({
  name: "ListEntries",
  input: Schema.Struct({}),
  output: Schema.Array(Schema.Struct({ id: Schema.String, day: Schema.Date })),
  handle: (_input, ctx) => ctx.db.list(Entry, { orderBy: [["id", "asc"]] }),
})
`,
      Measure: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Measured } from "../project.ts"
export default defineCommand({
  name: "Measure",
  input: Schema.Struct({ n: Schema.Number, more: Schema.Array(Schema.Number) }),
  output: Schema.Struct({ negativeZeros: Schema.Number }),
  handle: (input, ctx) =>
    ctx.emit(Measured, input).pipe(
      Effect.as({ negativeZeros: [input.n, ...input.more].filter((x) => Object.is(x, -0)).length }),
    ),
})
`,
    },
  })
  const post = async (handler: string, body: string) => {
    const res = await running.server.call(HOST, `/api/${handler}`, { body })
    return { status: res.status, body: await res.json() }
  }
  const overBus = async (handler: string, envelope: string) =>
    JSON.parse(decodeText(
      (await Effect.runPromise(
        running.server.bus.request(
          requestSubject("inputs", HOST, handler),
          new TextEncoder().encode(envelope),
          {
            timeoutMs: 5_000,
          },
        ),
      )).data,
    ))
  const logged = async (type: string) =>
    (await running.server.sql`select data from hamlet_events where host = ${HOST} and type = ${type}
                             order by seq`).map((r) => r.data)

  it("a -0 in JSON input reaches the handler as 0, as the log keeps it", async () => {
    const http = await post("Measure", '{"n":-0,"more":[-0.0,-1e-400,2]}')
    expect(http).toEqual({ status: 200, body: { negativeZeros: 0 } })
    const bus = await overBus("Measure", '{"id":"m-1","input":{"n":-0,"more":[-0]}}')
    expect(bus).toEqual({ ok: true, output: { negativeZeros: 0 } })
    expect(await logged("Measured")).toEqual([{ n: 0, more: [0, 0, 2] }, { n: 0, more: [0] }])
  })

  it("a Schema.Date outside the years 1 to 9999 is refused with 400 at its path, writing nothing", async () => {
    for (
      const day of [
        "+275760-09-13T00:00:00.000Z",
        "-000001-01-01T00:00:00Z",
        "0000-06-01T00:00:00Z",
        "+010000-01-01T00:00:00Z",
      ]
    ) {
      const http = await post("RecordDate", JSON.stringify({ id: "far", day }))
      expect(http.status, day).toBe(400)
      expect(http.body.error.code).toBe("bad_request")
      expect(http.body.error.issues).toEqual([{
        path: "day",
        message: "a date from the year 1 to 9999 is expected",
      }])
      const bus = await overBus("RecordDate", JSON.stringify({ id: "d-far", input: { id: "far", day } }))
      expect(bus.error.code, day).toBe("bad_request")
    }
    const nested = await post(
      "RecordDate",
      JSON.stringify({ id: "far", day: "2024-01-01", alsoOn: ["2024-01-02", "+010000-01-01T00:00:00Z"] }),
    )
    expect(nested.status).toBe(400)
    expect(nested.body.error.issues.map((i: { path: string }) => i.path)).toEqual(["alsoOn.1"])
    expect(await logged("Dated")).toEqual([])
    for (const day of ["0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"]) {
      expect(await post("RecordDate", JSON.stringify({ id: day, day }))).toEqual({
        status: 200,
        body: { year: new Date(day).getUTCFullYear() },
      })
    }
    // read back through Hamlet as stored: the same instants
    const entries = await running.server.call(HOST, "/api/ListEntries")
    expect(await entries.json()).toEqual([
      { id: "0001-01-01T00:00:00.000Z", day: "0001-01-01T00:00:00.000Z" },
      { id: "9999-12-31T23:59:59.999Z", day: "9999-12-31T23:59:59.999Z" },
    ])
  })
})
