/**
 * A node stopping while the store does not let a command batch finish (here: a handler that
 * outlives the 10 s drain window) answers that batch's callers instead of leaving them to
 * time out: a batch whose COMMIT never went out is "overloaded, retry" — and so is a command of a
 * batch that was rolled back and is being retried command by command, not yet run again.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { decodeText, encodeJson } from "../../src/bus/envelope.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { serveTempProject } from "../support/project-server.ts"
import { checkService } from "../support/services.ts"
import { MOD, type TempProjectSpec } from "../support/temp-project.ts"

const HOST = "stopping.batch.test"
const hasPostgres = await checkService("postgres")

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

const RETRY_HOST = "retrying.batch.test"

/**
 * `First` runs at once, then for 40 s when run again (its batch's retry, command by command);
 * `Clash` notes an id that exists, so the batch's COMMIT answers ROLLBACK (a read table's unique key).
 */
const retrySpec: TempProjectSpec = {
  name: "retrier",
  hosts: [RETRY_HOST],
  projectTs: `import { Schema } from "effect"
import { defineEvent, defineModel, defineProject, defineProjection } from ${MOD}
export const Note = defineModel("note", { id: Schema.String })
export const Noted = defineEvent("Noted", Schema.Struct({ id: Schema.String }), (e) => e.id)
export default defineProject({
  name: "retrier",
  models: [Note],
  events: [Noted],
  projections: [defineProjection(Noted, (e, db) => db.insert(Note, { id: e.data.id }))],
})
`,
  api: {
    Slow: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Noted } from "../project.ts"
export default defineCommand({
  name: "Slow", input: Schema.Struct({ id: Schema.String }), output: Schema.Struct({}),
  handle: (input, ctx) => Effect.sleep("600 millis").pipe(Effect.andThen(ctx.emit(Noted, input)), Effect.as({})),
})
`,
    First: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Noted } from "../project.ts"
let runs = 0
export default defineCommand({
  name: "First", input: Schema.Struct({ id: Schema.String }), output: Schema.Struct({}), timeoutMs: 60_000,
  handle: (input, ctx) =>
    Effect.suspend(() => ++runs === 1 ? Effect.void : Effect.sleep("40 seconds")).pipe(
      Effect.andThen(ctx.emit(Noted, input)),
      Effect.as({}),
    ),
})
`,
    Clash: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Noted } from "../project.ts"
export default defineCommand({
  name: "Clash", input: Schema.Struct({ id: Schema.String }), output: Schema.Struct({}), timeoutMs: 60_000,
  handle: (input, ctx) => ctx.emit(Noted, input).pipe(Effect.as({})),
})
`,
  },
}

// on Postgres: PGlite's one connection is held by the retry's open transaction, so the stop's own
// statements (a scheduled job giving its lease back) wait behind it
describe.skipIf(!hasPostgres)(
  "stopping a node while a failed batch is retried command by command, on postgres",
  () => {
    const running = serveTempProject(retrySpec, { store: "postgres" })
    const send = (handler: string, id: string, key?: string) =>
      Effect.runPromise(
        running.server.bus.request(
          requestSubject("retrier", RETRY_HOST, handler),
          encodeJson({
            id: `${handler}-${id}`,
            input: { id },
            ...(key ? { meta: { idempotencyKey: key } } : {}),
          }),
          { timeoutMs: 60_000 },
        ),
      ).then((reply) => JSON.parse(decodeText(reply.data)))

    it("tells a command not yet retried that nothing was written, not that it may have been", async () => {
      expect(await send("Clash", "taken")).toEqual({ ok: true, output: {} })
      // one batch busy in its handler, so that First and Clash queue up and share the next one
      const slow = send("Slow", "slow")
      await new Promise((resolve) => setTimeout(resolve, 200))
      const first = send("First", "first", "key-first")
      const clash = send("Clash", "taken", "key-clash")
      expect(await slow).toEqual({ ok: true, output: {} })
      // the shared batch failed (Clash's row exists) and First runs again alone, for 40 s
      await new Promise((resolve) => setTimeout(resolve, 500))
      const started = Date.now()
      const closing = running.server.close()
      const [firstAnswer, clashAnswer] = await Promise.all([first, clash])
      await closing
      // Clash's write surely did not land (its batch was rolled back; it was not run again)
      expect(clashAnswer).toEqual({
        ok: false,
        error: { code: "overloaded", message: `host ${RETRY_HOST} is shutting down; retry` },
      })
      expect(firstAnswer).toMatchObject({ ok: false, error: { code: "overloaded" } })
      expect(Date.now() - started).toBeLessThan(20_000) // the drain window, not First's 40 s
    }, 60_000)
  },
)
