/**
 * A statement of a host's command transaction that never reaches the store while its connection
 * stays open (a half-open network; here a TCP proxy in front of the store holds it back) costs
 * that one batch, not the host: the transaction's bound closes the connection, the caller gets its
 * honest answer (the COMMIT went out: the write may have been applied; a read never answered:
 * nothing was written), and the host's next command runs on a fresh connection while the node
 * runs. Before, every later command to the host timed out until the node stopped, and the store
 * kept the transaction open, its locks held against every other node.
 */
import { Effect, Exit, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { decodeText, encodeJson } from "../../src/bus/envelope.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { dropStrayConnectionErrors } from "../../src/store/stray-connection-errors.ts"
import type { StoreKind } from "../support/database.ts"
import { until } from "../support/eventually.ts"
import { startProxiedStore } from "../support/proxied-store.ts"
import { startTestServer } from "../support/server.ts"
import { checkService, uniqueSuffix } from "../support/services.ts"
import { notesProject, writeTempProject } from "../support/temp-project.ts"

const HOST = "stalled.commit.test"
/** The handlers' time limit: the transaction's bound is this plus its margin (transaction.ts). */
const HANDLER_TIMEOUT_MS = 1_000

const notes = notesProject({
  name: "stalled",
  hosts: [HOST],
  projection: "(e, db) => db.insert(Note, { id: e.data.id, text: e.data.text })",
})
const spec = {
  ...notes,
  projectTs: notes.projectTs.replace(
    "defineProject({",
    `defineProject({\n  limits: { handlerTimeoutMs: ${HANDLER_TIMEOUT_MS} },`,
  ),
}

const hasPostgres = await checkService("postgres")

// as every isolate of a node does (app.ts): the stalled connection is closed under postgres.js
dropStrayConnectionErrors(() => {})

const describeStall = (kind: StoreKind) => () => {
  const stallOnce = async (
    arm: (store: Awaited<ReturnType<typeof startProxiedStore>>, text: string, key: string) => void,
    expected: { readonly code: string; readonly message: RegExp },
  ) => {
    const scope = Effect.runSync(Scope.make())
    const temp = await writeTempProject(spec)
    try {
      const store = await startProxiedStore(kind, scope)
      const server = await startTestServer({ configPath: temp.configPath, database: store.database })
      try {
        const warm = await server.call(HOST, "/api/AddNote", {
          method: "POST",
          body: JSON.stringify({ text: "warm" }),
        })
        expect(warm.status).toBe(200)
        const text = `stalled-${uniqueSuffix()}` // (no marker in it)
        const key = `key-${text}`
        arm(store, text, key)
        const started = Date.now()
        // over the bus, waiting longer than the bound: the actor's own answer, not the ingress' 504
        const reply = await Effect.runPromise(server.bus.request(
          requestSubject("stalled", HOST, "AddNote"),
          encodeJson({ id: text, input: { text }, meta: { idempotencyKey: key } }),
          { timeoutMs: 30_000 },
        ))
        expect(store.proxy.stalls()).toBe(1)
        const answer = JSON.parse(decodeText(reply.data))
        expect(answer).toMatchObject({ ok: false, error: { code: expected.code } })
        expect(answer.error.message).toMatch(expected.message)
        expect(Date.now() - started).toBeLessThan(15_000) // the bound (1 s + 5 s), not for ever
        // the host works again while the node runs: a new connection, the head read again
        const later = Date.now()
        const after = await server.call(HOST, "/api/AddNote", {
          method: "POST",
          body: JSON.stringify({ text: `${text}-later` }),
        })
        expect(after.status).toBe(200)
        expect(Date.now() - later).toBeLessThan(5_000)
        // the store is not left holding the stalled transaction (and its locks)
        await until("the stalled transaction to end in the store", async () => {
          const [{ n }] = await server.sql`select count(*)::int as n from pg_stat_activity
                                           where state like 'idle in transaction%'`
          return n === 0
        })
        const [{ n }] = await server.sql`select count(*)::int as n from hamlet_events
                                         where host = ${HOST} and data->>'text' = ${text}`
        expect(n).toBe(0) // the COMMIT, or the read, never reached the store: nothing was written
      } finally {
        await server.close()
      }
    } finally {
      await temp.remove()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }

  it(
    "answers 'may have been applied' when the COMMIT is held back, and the host's next command succeeds",
    () =>
      stallOnce(
        (store, text) => store.proxy.stallWhenSent("commit", text),
        {
          code: "overloaded",
          message:
            /^the store failed while committing: the write may have been applied; retrying with the same Idempotency-Key is safe$/,
        },
      ),
    60_000,
  )

  it(
    "answers 'nothing was written' when a read before the COMMIT is held back, and the host's next command succeeds",
    () =>
      // the idempotency key's read is the batch's first statement carrying the key
      stallOnce(
        (store, _text, key) => store.proxy.stallWhenSent(key),
        { code: "overloaded", message: /^the store is unavailable; nothing was written, retry$/ },
      ),
    60_000,
  )
}

describe("a host transaction whose statement never reaches the store, on pglite", describeStall("pglite"))

// skipped only when Postgres is unreachable on a dev machine; .ci/run (HAMLET_REQUIRE_SERVICES=1) fails instead
describe.skipIf(!hasPostgres)(
  "a host transaction whose statement never reaches the store, on postgres",
  describeStall("postgres"),
)
