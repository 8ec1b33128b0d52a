/**
 * The read-lanes half of the store contract (src/store/read-lanes.ts): reads of many hosts
 * share connections and read-only transactions, each statement under its own host; a slow statement
 * holds up only what queued behind it; one host's slow statements leave lanes to the others; a
 * read past its statement timeout is cancelled by Postgres; writers still get a connection while
 * reads stream.
 */
import { assert, type Vitest } from "@effect/vitest"
import { Effect } from "effect"
import { Database, query, type Sql } from "../../src/store/database.ts"
import { migrateCore } from "../../src/store/migrations.ts"
import { makeReadLanes, READ_TIMED_OUT } from "../../src/store/read-lanes.ts"
import { TENANT_ROLE } from "../../src/store/roles.ts"
import { withOwnerTransaction } from "../../src/store/transaction.ts"
import { type StoreKind, terminateSleeping } from "../support/database.ts"
import { watchPromise } from "../support/eventually.ts"

const _setup = Effect.gen(function* () {
  const { sql, kind } = yield* Database
  yield* migrateCore(sql)
  yield* query(() => sql`create table if not exists lanes_note (host text not null, id text not null)`)
  yield* query(() => sql.unsafe(`grant select on lanes_note to ${TENANT_ROLE}`))
  return { sql, kind }
})

/** Cancels the `pg_sleep` statements carrying `marker` as they start, until `isDone` (10 s at most). */
const _cancelSleeping = (sql: Sql, marker: string, isDone: () => boolean) =>
  Effect.gen(function* () {
    const pattern = `%${marker}%`
    for (let i = 0; i < 500 && !isDone(); i++) {
      yield* query(() =>
        sql`select pg_cancel_backend(pid) from pg_stat_activity
            where wait_event = 'PgSleep' and query like ${pattern}`
      )
      yield* Effect.sleep("20 millis")
    }
  })

export const describeReadLanesContract = (it: Vitest.MethodsNonLive<Database>, kind: StoreKind): void => {
  it.effect("read lanes: a failed statement fails alone; the statements around it answer", () =>
    Effect.gen(function* () {
      const { sql } = yield* _setup
      const lanes = makeReadLanes(sql)
      // sent in one turn, the three share a transaction: the failure aborts it, and the statement
      // behind the failed one is sent again in a transaction of its own
      const outcomes = yield* Effect.promise(() =>
        Promise.allSettled([
          lanes.run("a.lanes.test", "select 1 as n", []),
          lanes.run("a.lanes.test", "select * from no_such_table", []),
          lanes.run("b.lanes.test", "select current_setting('hamlet.host') as host", []),
        ])
      )
      assert.deepStrictEqual(outcomes.map((o) => o.status), ["fulfilled", "rejected", "fulfilled"])
      // refused before anything is sent: a host that is not a normalised hostname, a parameter
      // postgres.js cannot serialise; the lane goes on answering
      const refused = yield* Effect.promise(() =>
        Promise.allSettled([
          lanes.run("Not A Host'", "select 1", []),
          lanes.run("a.lanes.test", "select $1::text as t", [Symbol("not a value")]),
        ])
      )
      assert.deepStrictEqual(refused.map((o) => o.status), ["rejected", "rejected"])
      const [after] = yield* query(() =>
        lanes.run("a.lanes.test", "select current_setting('hamlet.host') as h", [])
      )
      assert.strictEqual(after.h, "a.lanes.test")
      assert.deepStrictEqual((outcomes[2] as PromiseFulfilledResult<Array<{ host: string }>>).value, [
        { host: "b.lanes.test" },
      ])
    }))

  it.effect("read lanes: a writer gets the connection while reads keep streaming", () =>
    Effect.gen(function* () {
      const { sql } = yield* _setup
      const lanes = makeReadLanes(sql)
      let isWritten = false
      let readsAfterWrite = 0
      // 32 readers in a closed loop keep reads in flight until the write has landed (2 s at most);
      // on PGlite's single connection the writer gets in only when a lane drains or its turn ends
      const readers = Promise.all(Array.from({ length: 32 }, async () => {
        const until = Date.now() + 2_000
        while (Date.now() < until && readsAfterWrite < 100) {
          await lanes.run("r.lanes.test", "select count(*) from lanes_note", [])
          if (isWritten) readsAfterWrite++
        }
      }))
      yield* withOwnerTransaction(
        sql,
        (tx) => query(() => tx`insert into lanes_note values ('r.lanes.test', 'w')`),
      )
      isWritten = true
      yield* Effect.promise(() => readers)
      assert.isAbove(readsAfterWrite, 0, "reads went on after the write")
      const [row] = yield* query(() =>
        lanes.run("r.lanes.test", "select count(*)::int as n from lanes_note where host = $1", [
          "r.lanes.test",
        ])
      )
      assert.strictEqual(row.n, 1)
    }))

  it.effect("read lanes: a slow statement does not hold up reads sent after it", () =>
    Effect.gen(function* () {
      const { sql, kind } = yield* _setup
      // PGlite runs one statement at a time on its one connection: nothing can pass a slow one
      if (kind === "pglite") return
      const lanes = makeReadLanes(sql)
      const slow = lanes.run("slow.lanes.test", "select pg_sleep(1.5)", [])
      yield* Effect.sleep("100 millis")
      const started = Date.now()
      yield* query(() => lanes.run("quick.lanes.test", "select 1", []))
      // another lane took it once the first counted as stalled: not after the 1.5 s sleep
      assert.isBelow(Date.now() - started, 1_000)
      yield* Effect.promise(() => slow)
    }))

  it.effect("read lanes: a connection lost under a statement fails what was on it; the next reads get a fresh one", () =>
    Effect.gen(function* () {
      const { sql, kind } = yield* _setup
      // PGlite's one in-process backend cannot be terminated from another session
      if (kind === "pglite") return
      const lanes = makeReadLanes(sql)
      // one turn: both go out on one lane, in one transaction
      const lost = Promise.allSettled([
        lanes.run("lost.lanes.test", "select pg_sleep(5) /* lanes-lost */", []),
        lanes.run("lost.lanes.test", "select 1 as n", []),
      ])
      yield* terminateSleeping(sql, "lanes-lost")
      const outcomes = yield* Effect.promise(() => lost)
      assert.deepStrictEqual(outcomes.map((o) => o.status), ["rejected", "rejected"])
      const [row] = yield* query(() => lanes.run("lost.lanes.test", "select 2 as n", []))
      assert.strictEqual(row.n, 2)
    }))

  // PGlite does not enforce statement_timeout (its WASM backend runs no timers): the setting is
  // taken and ignored there, and a slow read ends when it ends
  it.effect.skipIf(kind === "pglite")(
    "read lanes: a read past its statement timeout is cancelled by Postgres; the reads around it answer",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* _setup
        const lanes = makeReadLanes(sql, { statementTimeoutMs: 300 })
        // one turn, one transaction: the runaway read is cancelled at the lanes' default; the one
        // behind it runs again alone, under its own longer limit; the limit goes back for the next host
        const outcomes = yield* Effect.promise(() =>
          Promise.allSettled([
            lanes.run("runaway.lanes.test", "select pg_sleep(10)", []),
            lanes.run("runaway.lanes.test", "select pg_sleep(0.5), 'slept' as s", [], { timeoutMs: 5_000 }),
            lanes.run("other.lanes.test", "select current_setting('statement_timeout') as t", []),
          ])
        )
        assert.deepStrictEqual(
          outcomes.map((o) => o.status === "fulfilled" ? o.value : (o.reason as { code?: string }).code),
          [READ_TIMED_OUT, [{ pg_sleep: "", s: "slept" }], [{ t: "300ms" }]],
        )
      }),
  )

  // PGlite runs one statement at a time on its one connection: nothing can pass a slow one
  it.effect.skipIf(kind === "pglite")(
    "read lanes: one host's slow reads leave lanes to other hosts' reads",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* _setup
        const lanes = makeReadLanes(sql)
        const slow: Array<{ settled?: PromiseSettledResult<unknown> }> = []
        try {
          for (let i = 0; i < 4; i++) {
            slow.push(watchPromise(lanes.run("noisy.lanes.test", "select pg_sleep(5) /* lanes-noisy */", [])))
            yield* Effect.sleep("30 millis") // past STALLED_LANE_MS (20 ms): the lane counts as stalled
          }
          // before: the four took every lane (MAX_LANES), and this waited behind one of them
          const [row] = yield* query(() => lanes.run("quiet.lanes.test", "select 1 as one", []))
          assert.strictEqual(row.one, 1)
          assert.strictEqual(
            slow.filter((s) => s.settled === undefined).length,
            4,
            "the quiet host's read answered only after a slow one",
          )
        } finally {
          yield* _cancelSleeping(sql, "lanes-noisy", () => slow.every((s) => s.settled !== undefined))
        }
      }),
  )
}
