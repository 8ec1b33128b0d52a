/**
 * Per-project scheduled events: every period, exactly one of two nodes on one Postgres
 * sends the schedule's command to each host of the project, so each host's log gets one
 * event per period.
 */
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PostgresLive } from "../../src/store/postgres.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { MOD, type TempProject, writeTempProject } from "../support/temp-project.ts"
import { checkService } from "../support/services.ts"

const available = await checkService("postgres")
const HOSTS = ["one.tick.test", "two.tick.test"]

const project = () =>
  writeTempProject({
    name: "ticker",
    hosts: HOSTS,
    projectTs: `import { Schema } from "effect"
import { defineEvent, defineProject } from ${MOD}
export const Ticked = defineEvent("Ticked", Schema.Struct({ period: Schema.String }), () => "ticks")
export default defineProject({
  name: "ticker", events: [Ticked], schedules: [{ name: "Heartbeat", every: "300 millis", command: "Tick" }],
})
`,
    api: {
      Tick: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Ticked } from "../project.ts"
export default defineCommand({
  name: "Tick", input: Schema.Struct({ period: Schema.String }), output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) => ctx.emit(Ticked, input).pipe(Effect.as({ ok: true })),
})
`,
    },
  })

describe.skipIf(!available)("per-project scheduled events", () => {
  const scope = Effect.runSync(Scope.make())
  let temp: TempProject
  let nodes: Array<TestServer> = []

  beforeAll(async () => {
    temp = await project()
    const url = await Effect.runPromise(Scope.provide(scratchPostgresUrl, scope))
    const configPath = temp.configPath
    nodes = [await startTestServer({ configPath, database: PostgresLive(url) })]
    nodes.push(await startTestServer({ configPath, database: PostgresLive(url) }))
  }, 60_000)
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()))
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await temp?.remove()
  })

  it("runs the command once per period on every host, across two nodes", async () => {
    const sql = nodes[0].sql
    const periodsOf = async (host: string) =>
      (await sql`select data->>'period' as period from hamlet_events where host = ${host} and type = 'Ticked'`)
        .map((r) => String(r.period))
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      const counts = await Promise.all(HOSTS.map(async (h) => (await periodsOf(h)).length))
      if (counts.every((n) => n >= 3)) break
      await new Promise((r) => setTimeout(r, 50))
    }
    for (const host of HOSTS) {
      const periods = await periodsOf(host)
      expect(periods.length).toBeGreaterThanOrEqual(3)
      expect(new Set(periods).size).toBe(periods.length)
    }
    const claims = await sql`select count(distinct claimed_by)::int as nodes, count(*)::int as ticks
                             from hamlet_schedule where name = 'ticker.Heartbeat'`
    expect(claims[0].ticks).toBeGreaterThanOrEqual(3)
  })
})
