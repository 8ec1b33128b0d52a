/**
 * Listing a host's log (`deno task replay`) ends even when the store never answers the rollback
 * that closes its snapshot (a TCP proxy in front of the store holds it back, the connection
 * open): the connection is closed after a bounded wait instead of holding the CLI for ever, and
 * the events read before are all there.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { Auditor, AuditorLive } from "../../src/audit/auditor.ts"
import type { StoredEvent } from "../../src/store/event-log.ts"
import { dropStrayConnectionErrors } from "../../src/store/stray-connection-errors.ts"
import { startProxiedStore } from "../support/proxied-store.ts"
import { startTestServer } from "../support/server.ts"
import { checkService } from "../support/services.ts"

const CONFIG = "./test/fixtures/audit/config.json"
const BLOG = "blog.example.com"
const hasPostgres = await checkService("postgres")

// a node's isolates keep this handler (app.ts): the connection closed under the stalled rollback
// may be reset under postgres.js' own statements after the test has ended
dropStrayConnectionErrors(() => {})

const describeStuckRollback = (kind: "postgres") => () => {
  it("lists the log and returns within the finish bound when the rollback is never answered", async () => {
    const scope = Effect.runSync(Scope.make())
    try {
      const store = await startProxiedStore(kind, scope)
      const server = await startTestServer({ configPath: CONFIG, database: store.database })
      try {
        for (const title of ["one", "two"]) {
          const reply = await server.call(BLOG, "/api/SubmitItem", {
            method: "POST",
            body: JSON.stringify({ title, tags: [] }),
          })
          expect(reply.status).toBe(200)
        }
      } finally {
        await server.close()
      }
      // the snapshot's rollback, on the connection that read the log, never reaches the store
      store.proxy.stallWhenSent("rollback", "hamlet_events")
      const started = Date.now()
      const events = await Effect.runPromise(
        Effect.gen(function* () {
          const auditor = yield* Auditor
          return yield* Effect.promise(async () => {
            const listed: Array<StoredEvent> = []
            for await (const batch of auditor.events(BLOG, {})) listed.push(...batch)
            return listed
          })
        }).pipe(Effect.provide(AuditorLive(CONFIG).pipe(Layer.provide(store.database)))),
      )
      expect(store.proxy.stalls()).toBe(1)
      expect(events.map((e) => [e.seq, e.type])).toEqual([[1, "ItemSubmitted"], [2, "ItemSubmitted"]])
      expect(Date.now() - started).toBeLessThan(10_000) // the 3 s bound, not for ever
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 60_000)
}

// not on PGlite: its one backend session, still inside the unanswered snapshot, serves nothing else
// until the proxy lets go, and a stalled network is a real server's failure anyway
// skipped only when Postgres is unreachable on a dev machine; .ci/run (HAMLET_REQUIRE_SERVICES=1) fails instead
describe.skipIf(!hasPostgres)(
  "listing a log whose snapshot rollback is never answered, on postgres",
  describeStuckRollback("postgres"),
)
