/**
 * A store that cannot be used answers "try again", not 500, when that is the truth: over HTTP,
 * with the server's Postgres (real, or embedded PGlite) behind a TCP proxy that refuses
 * connections, drops one mid-transaction, or swallows a COMMIT. Nothing written → 503 with
 * Retry-After; a commit of unknown outcome → "may have been applied", 503 when the request's
 * Idempotency-Key makes the retry safe, 500 otherwise.
 */
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { dropStrayConnectionErrors } from "../../src/store/stray-connection-errors.ts"
import { until } from "../support/eventually.ts"
import { startProxiedStore } from "../support/proxied-store.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { checkService, uniqueSuffix } from "../support/services.ts"
import type { TcpProxy } from "../support/tcp-proxy.ts"
import { MOD, notesProject, type TempProject, writeTempProject } from "../support/temp-project.ts"

/** A host per test: a write one of them leaves stuck in the store holds up no other test's. */
const HOSTS = ["refused", "dropped", "read-dropped", "keyed", "unkeyed"].map((name) => `${name}.outage.test`)

const base = notesProject({
  name: "outage",
  hosts: HOSTS,
  projection: "(e, db) => db.insert(Note, { id: e.data.id, text: e.data.text })",
})
const spec = {
  ...base,
  api: {
    ...base.api,
    // reads its note first: a connection dropped on that read is dropped mid-transaction
    AddNewNote: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Note, Noted } from "../project.ts"
export default defineCommand({
  name: "AddNewNote",
  input: Schema.Struct({ id: Schema.String, text: Schema.String }),
  output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) =>
    ctx.db.get(Note, input.id).pipe(
      Effect.andThen((found) => found ? Effect.void : ctx.emit(Noted, input)),
      Effect.as({ ok: true }),
    ),
})
`,
    FindNote: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
import { Note } from "../project.ts"
export default defineQuery({
  name: "FindNote",
  input: Schema.Struct({ id: Schema.String }),
  output: Schema.Struct({ found: Schema.Boolean }),
  handle: (input, ctx) => ctx.db.get(Note, input.id).pipe(Effect.map((row) => ({ found: row !== undefined }))),
})
`,
  },
}

interface Answer {
  readonly status: number
  readonly retryAfter: string | null
  readonly requestId: string | null
  readonly error?: { readonly code: string; readonly message: string; readonly requestId?: string }
}

const hasPostgres = await checkService("postgres")

const describeStoreUnavailable = (kind: "pglite" | "postgres") => () => {
  const scope = Effect.runSync(Scope.make())
  let temp: TempProject
  let server: TestServer
  let proxy: TcpProxy
  let keepStrayConnectionErrors = () => {}

  beforeAll(async () => {
    // as every isolate of a node does (app.ts): postgres.js' own type fetch on a refused connect
    keepStrayConnectionErrors = dropStrayConnectionErrors(() => {})
    const store = await startProxiedStore(kind, scope)
    proxy = store.proxy
    temp = await writeTempProject(spec)
    server = await startTestServer({ configPath: temp.configPath, database: store.database })
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await temp?.remove()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    keepStrayConnectionErrors()
  })

  const answerOf = async (response: Response): Promise<Answer> => {
    const body = await response.json() as { error?: Answer["error"] }
    return {
      status: response.status,
      retryAfter: response.headers.get("retry-after"),
      requestId: response.headers.get("x-request-id"),
      error: body.error,
    }
  }
  /** Arms `dropWhenSent(marker, after)`, runs `send`, and checks it dropped exactly one connection. */
  const droppedOnce = async <A>(
    marker: string,
    after: string | undefined,
    send: () => Promise<A>,
  ): Promise<A> => {
    const drops = proxy.drops()
    proxy.dropWhenSent(marker, after)
    const answer = await send()
    expect(proxy.drops()).toBe(drops + 1)
    return answer
  }
  /** Requests to `host`, and its log. */
  const on = (host: string) => ({
    command: async (handler: string, input: unknown, idempotencyKey?: string) =>
      answerOf(
        await server.call(host, `/api/${handler}`, {
          body: JSON.stringify(input),
          headers: idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey },
        }),
      ),
    findNote: async (id: string) => answerOf(await server.call(host, `/api/FindNote?id=${id}`)),
    /** Events in the host's log whose data has `field` = `value` (read once the store is back). */
    eventsWith: async (field: "id" | "text", value: string) =>
      (await server.sql`select count(*)::int as n from hamlet_events
                        where host = ${host} and data->>${field} = ${value}`)[0].n as number,
  })

  it(
    "while the store refuses connections, a write answers 503 and leaves no event; a read answers 503",
    async () => {
      const { command, findNote, eventsWith } = on("refused.outage.test")
      const text = `refused-${uniqueSuffix()}`
      expect((await command("AddNote", { text: "before the outage" })).status).toBe(200)
      await proxy.refuse()
      try {
        for (let i = 0; i < 3; i++) {
          const write = await command("AddNote", { text })
          expect(write).toMatchObject({ status: 503, retryAfter: "1", error: { code: "overloaded" } })
          expect(write.error?.message).toBe("the store is unavailable; nothing was written, retry")
          const read = await findNote("any")
          expect(read).toMatchObject({ status: 503, retryAfter: "1", error: { code: "overloaded" } })
          expect(read.error?.message).toBe("the store is unavailable; retry")
        }
      } finally {
        await proxy.accept()
      }
      await until(
        "writes to succeed again",
        async () => (await command("AddNote", { text: "after" })).status === 200,
      )
      expect(await eventsWith("text", text)).toBe(0)
    },
    30_000,
  )

  it(
    "a connection dropped in the middle of a write's transaction: 503, nothing written, the retry lands once",
    async () => {
      const { command, eventsWith } = on("dropped.outage.test")
      const id = `dropped-${uniqueSuffix()}`
      // the handler's read of its note: the transaction has begun
      const write = await droppedOnce(
        id,
        undefined,
        () => command("AddNewNote", { id, text: "dropped mid-transaction" }),
      )
      expect(write).toMatchObject({ status: 503, retryAfter: "1", error: { code: "overloaded" } })
      expect(write.error?.message).toBe("the store is unavailable; nothing was written, retry")
      await until(
        "the retry to succeed",
        async () => (await command("AddNewNote", { id, text: "again" })).status === 200,
      )
      expect(await eventsWith("id", id)).toBe(1)
    },
    30_000,
  )

  it("a read whose connection drops answers 503, and the next one answers", async () => {
    const { findNote } = on("read-dropped.outage.test")
    const id = `read-dropped-${uniqueSuffix()}`
    const read = await droppedOnce(id, undefined, () => findNote(id))
    expect(read).toMatchObject({ status: 503, retryAfter: "1", error: { code: "overloaded" } })
    await until("reads to answer again", async () => (await findNote(id)).status === 200)
  }, 30_000)

  it(
    "a COMMIT lost on its way with an Idempotency-Key: 503 'may have been applied', and the retry with the key lands once",
    async () => {
      const { command, eventsWith } = on("keyed.outage.test")
      const text = `outcome-unknown-keyed-${uniqueSuffix()}`
      // on the connection that carried the text: the write's own
      const write = await droppedOnce("commit", text, () => command("AddNote", { text }, text))
      expect(write).toMatchObject({ status: 503, retryAfter: "1", error: { code: "overloaded" } })
      expect(write.error?.message).toMatch(
        /may have been applied; retrying with the same Idempotency-Key is safe/,
      )
      await until(
        "the retry to succeed",
        async () => (await command("AddNote", { text }, text)).status === 200,
      )
      expect((await command("AddNote", { text }, text)).status).toBe(200)
      expect(await eventsWith("text", text)).toBe(1)
    },
    30_000,
  )

  it(
    "a COMMIT lost on its way without an Idempotency-Key: 500 'may have been applied' with the request id",
    async () => {
      const { command, eventsWith } = on("unkeyed.outage.test")
      const text = `outcome-unknown-${uniqueSuffix()}`
      const write = await droppedOnce("commit", text, () => command("AddNote", { text }))
      expect(write).toMatchObject({ status: 500, retryAfter: null, error: { code: "internal" } })
      expect(write.error?.message).toMatch(/may have been applied/)
      expect(write.error?.requestId).toBe(write.requestId)
      // here it was not: the server never saw the COMMIT, and rolled the transaction back
      await until(
        "writes to succeed again",
        async () => (await command("AddNote", { text: "later" })).status === 200,
      )
      expect(await eventsWith("text", text)).toBe(0)
    },
    30_000,
  )
}

describe("a store that cannot be used (pglite)", describeStoreUnavailable("pglite"))
describe.skipIf(!hasPostgres)("a store that cannot be used (postgres)", describeStoreUnavailable("postgres"))
