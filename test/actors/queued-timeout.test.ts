/**
 * A host's commands run one after another, each within its time limit counted from its arrival:
 * a command that waited behind a slow one may run out of time, and its answer says it was the
 * wait, not the command itself, that took it (the slow one is told it exceeded its limit).
 */
import { describe, expect, it } from "vitest"
import { serveTempProject } from "../support/project-server.ts"
import { MOD } from "../support/temp-project.ts"

const HOST = "queue.timeout.test"
const command = (name: string, sleepMs: number) =>
  `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
export default defineCommand({
  name: "${name}", input: Schema.Struct({}), output: Schema.Struct({}),
  handle: () => Effect.sleep(${sleepMs}).pipe(Effect.as({})),
})
`

describe("a command that ran out of time waiting behind a slow one", () => {
  const running = serveTempProject({
    name: "queued",
    hosts: [HOST],
    projectTs: `import { defineProject } from ${MOD}
export default defineProject({ name: "queued", limits: { handlerTimeoutMs: 1000 } })
`,
    api: { Hold: command("Hold", 1500), Quick: command("Quick", 500) },
  })

  it("is told its time went waiting; the slow one that it exceeded its limit", async () => {
    const post = async (name: string) => {
      const response = await running.server.call(HOST, `/api/${name}`, { body: "{}" })
      return { status: response.status, message: (await response.json()).error?.message as string }
    }
    const hold = post("Hold")
    // Quick arrives 300 ms after Hold: it starts after Hold times out (~1000 ms), with ~300 ms left
    await new Promise((resolve) => setTimeout(resolve, 300))
    const [slow, quick] = await Promise.all([hold, post("Quick")])
    expect(slow).toEqual({ status: 504, message: "Hold exceeded its time limit" })
    expect(quick.status).toBe(504)
    expect(quick.message).toMatch(/^Quick ran out of its 1000 ms time limit: \d+ ms of it went waiting/)
  })
})
