/**
 * Per-project scheduled events: every period, exactly one of two nodes on one Postgres
 * sends the schedule's command to each host of the project — once per host — so each host's
 * log gets one event per period, and the period is recorded as completed by that node.
 */
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { decodeText } from "../../src/bus/envelope.ts"
import { parseRequestSubject, SUBJECT_ROOT } from "../../src/bus/subjects.ts"
import { PostgresLive } from "../../src/store/postgres.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { until } from "../support/eventually.ts"
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

/** A Tick request as one node's bus carried it. */
interface Sent {
  readonly node: number
  readonly host: string
  readonly period: string
}

describe.skipIf(!available)("per-project scheduled events", () => {
  const scope = Effect.runSync(Scope.make())
  let temp: TempProject
  let nodes: Array<TestServer> = []
  const sent: Array<Sent> = []

  beforeAll(async () => {
    temp = await project()
    const url = await Effect.runPromise(Scope.provide(scratchPostgresUrl, scope))
    const configPath = temp.configPath
    nodes = [await startTestServer({ configPath, database: PostgresLive(url) })]
    nodes.push(await startTestServer({ configPath, database: PostgresLive(url) }))
    // each node has a bus of its own: what a node's scheduler sends is heard on that node's bus only
    for (const [node, server] of nodes.entries()) {
      await Effect.runPromise(Scope.provide(
        server.bus.subscribe(`${SUBJECT_ROOT}.req.ticker.*.Tick`, (message) => {
          const envelope = JSON.parse(decodeText(message.data))
          const host = parseRequestSubject(message.subject)!.host
          sent.push({ node, host, period: envelope.input.period })
        }),
        scope,
      ))
    }
  }, 60_000)
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()))
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await temp?.remove()
  })

  it("runs the command once per period on every host, sent by exactly one of two nodes", async () => {
    const sql = nodes[0].sql
    const periodsOf = async (host: string) =>
      (await sql`select data->>'period' as period from hamlet_events where host = ${host} and type = 'Ticked'`)
        .map((r) => String(r.period))
    // the first period heard may have begun before the listeners, the last may still be going on
    await until("five periods on the buses", () => new Set(sent.map((s) => s.period)).size >= 5, 15_000)
    const heard = [...Map.groupBy(sent, (s) => s.period)].sort(([a], [b]) => a.localeCompare(b)).slice(1, -1)
    expect(heard.length).toBeGreaterThanOrEqual(3)

    const claims = await sql`select period_start, claimed_by, attempts, completed_at from hamlet_schedule
                             where name = 'ticker.Heartbeat'`
    const claimOf = new Map(claims.map((c) => [(c.period_start as Date).toISOString(), c]))
    const nodesOfClaimant = new Map<string, Set<number>>()
    for (const [period, requests] of heard) {
      // the idempotency key would hide a second sender from the log: the buses show every send
      expect(new Set(requests.map((r) => r.node)).size, `nodes that sent ${period}`).toBe(1)
      expect(requests.map((r) => r.host).sort(), `hosts sent ${period}`).toEqual(HOSTS)
      const claim = claimOf.get(period)
      expect(claim, `claim of ${period}`).toMatchObject({ attempts: 1 })
      expect(claim?.completed_at, `completion of ${period}`).not.toBeNull()
      const claimant = String(claim?.claimed_by)
      nodesOfClaimant.set(claimant, (nodesOfClaimant.get(claimant) ?? new Set()).add(requests[0].node))
    }
    // the claim names the node that sent: one node per claimant
    for (const senders of nodesOfClaimant.values()) expect(senders.size).toBe(1)
    for (const host of HOSTS) {
      const periods = await periodsOf(host)
      for (const [period] of heard) expect(periods).toContain(period)
      expect(new Set(periods).size).toBe(periods.length)
    }
  })
})
