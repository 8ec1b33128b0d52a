/**
 * A node stopping while the store does not let a command batch finish (here: a handler that
 * outlives the 10 s drain window) answers that batch's callers instead of leaving them to
 * time out: a batch whose COMMIT never went out is "overloaded, retry".
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { decodeText, encodeJson } from "../../src/bus/envelope.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { serveTempProject } from "../support/project-server.ts"
import { MOD, type TempProjectSpec } from "../support/temp-project.ts"

const HOST = "stopping.batch.test"

const spec: TempProjectSpec = {
  name: "stopper",
  hosts: [HOST],
  projectTs: `import { defineProject } from ${MOD}
export default defineProject({ name: "stopper", models: [], events: [], projections: [] })
`,
  api: {
    Linger: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
export default defineCommand({
  name: "Linger", input: Schema.Struct({}), output: Schema.Struct({}), timeoutMs: 60_000,
  handle: () => Effect.sleep("40 seconds").pipe(Effect.as({})),
})
`,
  },
}

describe("stopping a node with a command batch stuck in the store", () => {
  const running = serveTempProject(spec)

  it("answers the batch's callers when the drain window ends", async () => {
    const reply = Effect.runPromise(
      running.server.bus.request(
        requestSubject("stopper", HOST, "Linger"),
        encodeJson({ id: "linger-1", input: {} }),
        { timeoutMs: 60_000 },
      ),
    )
    await new Promise((resolve) => setTimeout(resolve, 300)) // the batch is running its handler
    const started = Date.now()
    const closing = running.server.close()
    const answer = JSON.parse(decodeText((await reply).data))
    expect(answer).toMatchObject({ ok: false, error: { code: "overloaded" } })
    expect(Date.now() - started).toBeLessThan(20_000) // the drain window (10 s), not the caller's 60 s
    await closing
  }, 60_000)
})
