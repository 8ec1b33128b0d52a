/**
 * Idle host actors are passivated: after `limits.idleMs` without commands the host's
 * worker (mailbox + fiber) stops — visible as `hamlet_active_host_workers` in /metrics —
 * and the next command brings it back without anyone noticing.
 */
import { describe, expect, it } from "vitest"
import { until } from "../support/eventually.ts"
import { serveTempProject } from "../support/project-server.ts"
import { MOD, type TempProjectSpec } from "../support/temp-project.ts"

const HOSTS = ["one.idle.test", "two.idle.test"]

const spec: TempProjectSpec = {
  name: "idler",
  hosts: HOSTS,
  projectTs: `import { Schema } from "effect"
import { defineEvent, defineProject } from ${MOD}
export const Noted = defineEvent("Noted", Schema.Struct({ text: Schema.String }), () => "notes")
export default defineProject({ name: "idler", events: [Noted], limits: { idleMs: 1000 } })
`,
  api: {
    Note: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Noted } from "../project.ts"
export default defineCommand({
  name: "Note", input: Schema.Struct({ text: Schema.String }), output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) => ctx.emit(Noted, input).pipe(Effect.as({ ok: true })),
})
`,
  },
}

describe("passivation of idle host actors", () => {
  const running = serveTempProject(spec)

  const activeWorkers = async () => {
    const text = await (await running.server.call("localhost", "/metrics")).text()
    return Number(/^hamlet_active_host_workers (\d+)$/m.exec(text)?.[1])
  }
  const note = async (host: string, text: string) =>
    (await running.server.call(host, "/api/Note", { body: JSON.stringify({ text }) })).status

  it("stops an idle host's worker and restarts it on the next command", async () => {
    expect(await activeWorkers()).toBe(0)
    expect(await note(HOSTS[0], "first")).toBe(200)
    expect(await note(HOSTS[1], "first")).toBe(200)
    expect(await activeWorkers()).toBe(2)
    await until("both workers to passivate", async () => (await activeWorkers()) === 0)
    expect(await note(HOSTS[0], "again")).toBe(200)
    expect(await activeWorkers()).toBe(1)
    const rows = await running.server.sql`select seq from hamlet_events where host = ${HOSTS[0]} order by seq`
    expect(rows.map((r) => Number(r.seq))).toEqual([1, 2])
  })
})
