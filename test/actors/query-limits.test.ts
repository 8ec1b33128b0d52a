/**
 * Queries are bounded and drained like commands: past the project's `mailboxSize` of waiting
 * and running queries a host answers `overloaded` at once (a flood must not pile up and time
 * out), and a node that stops answers the queries it had taken instead of failing them.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { decodeText, encodeJson } from "../../src/bus/envelope.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { serveTempProject } from "../support/project-server.ts"
import { MOD, type TempProjectSpec } from "../support/temp-project.ts"

const HOST = "slow.reads.test"

const spec: TempProjectSpec = {
  name: "slowreads",
  hosts: [HOST],
  projectTs: `import { Schema } from "effect"
import { defineModel, defineProject } from ${MOD}
export const Thing = defineModel("thing", { id: Schema.String })
export default defineProject({ name: "slowreads", models: [Thing], limits: { mailboxSize: 4 } })
`,
  api: {
    Slow: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
import { Thing } from "../project.ts"
export default defineQuery({
  name: "Slow", input: Schema.Struct({ n: Schema.Number }), output: Schema.Struct({ n: Schema.Number }),
  // reads after the wait: a node that stopped under it would have closed the store
  handle: (input, ctx) => Effect.sleep("600 millis").pipe(Effect.andThen(ctx.db.count(Thing)), Effect.as(input)),
})
`,
  },
}

const ask = (running: ReturnType<typeof serveTempProject>, n: number) =>
  Effect.runPromise(
    running.server.bus.request(
      requestSubject("slowreads", HOST, "Slow"),
      encodeJson({ id: `slow-${n}`, input: { n } }),
      { timeoutMs: 10_000 },
    ),
  ).then((reply) => JSON.parse(decodeText(reply.data)))

describe("a flood of queries on one host", () => {
  const running = serveTempProject(spec)

  it("answers those past the mailbox size overloaded at once, and the rest", async () => {
    const started = Date.now()
    const replies = await Promise.all(Array.from({ length: 12 }, (_, n) => ask(running, n)))
    const refused = replies.filter((r) => !r.ok)
    expect(replies.filter((r) => r.ok).length).toBe(4)
    expect(refused.length).toBe(8)
    for (const r of refused) {
      expect(r.error).toMatchObject({ code: "overloaded", message: expect.stringMatching(/busy/) })
    }
    expect(Date.now() - started).toBeLessThan(5_000) // not the 10 s the callers would wait
    expect(await ask(running, 99)).toEqual({ ok: true, output: { n: 99 } })
  })
})

describe("stopping a node with queries running", () => {
  const running = serveTempProject(spec)

  it("answers the queries it had taken", async () => {
    await ask(running, 0) // the host actor is running
    const replies = Promise.all([ask(running, 1), ask(running, 2)])
    await new Promise((resolve) => setTimeout(resolve, 200)) // both are in their handler
    await running.server.close()
    expect(await replies).toEqual([{ ok: true, output: { n: 1 } }, { ok: true, output: { n: 2 } }])
  })
})
