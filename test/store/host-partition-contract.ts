/**
 * The host-partition half of the store contract (registerHost in src/store/event-log.ts): a
 * partition is made as a table of its own and attached, so registering a host neither waits for
 * nor blocks other hosts' transactions on the log; a table made and never attached is attached
 * by the next registration; a registration held up by a lock fails after its lock_timeout. Also:
 * a host transaction's log reads and appends lock its own partition only, and a lost (host, seq)
 * race is told from other unique violations (isSeqRace).
 */
import { assert, type Vitest } from "@effect/vitest"
import { Effect } from "effect"
import { Database, query, type Sql } from "../../src/store/database.ts"
import {
  appendEvents,
  HostOwnedElsewhere,
  isSeqRace,
  partitionName,
  readHead,
  registerHost,
  type RegisterHostError,
} from "../../src/store/event-log.ts"
import { migrateCore } from "../../src/store/migrations.ts"
import { withHostTransaction, withOwnerTransaction } from "../../src/store/transaction.ts"
import type { StoreKind } from "../support/database.ts"
import { watchPromise } from "../support/eventually.ts"

const _setup = Effect.gen(function* () {
  const { sql } = yield* Database
  yield* migrateCore(sql)
  return sql
})

/** Polls `isDone` every 10 ms for `ms` at most; whether it turned true. */
const _eventually = (isDone: () => boolean, ms = 5_000) =>
  Effect.promise(async () => {
    const until = Date.now() + ms
    while (!isDone() && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
    return isDone()
  })

const _bound = (sql: Sql, host: string) =>
  query(() =>
    sql`select pg_get_expr(c.relpartbound, c.oid) as bound from pg_inherits i
      join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
      where p.relname = 'hamlet_events' and c.relname = ${partitionName(host)}`
  ).pipe(Effect.map((rows) => rows.map((r) => String(r.bound))))

/** Opens a transaction on a connection of its own and runs `statement` in it; `end` rolls it back. */
const _openTransaction = (sql: Sql, statement: string) =>
  Effect.promise(async () => {
    const conn = await sql.reserve()
    await conn`begin`
    await conn.unsafe(statement)
    return { end: () => conn`rollback`.then(() => conn.release()) }
  })

export const describeHostPartitionContract = (it: Vitest.MethodsNonLive<Database>, kind: StoreKind): void => {
  // PGlite has one connection: no other transaction can be open while a host registers
  it.effect.skipIf(kind === "pglite")(
    "registerHost() neither waits for nor holds up another host's open transaction on the log",
    () =>
      Effect.gen(function* () {
        const sql = yield* _setup
        yield* registerHost(sql, "contract", "busy.partition.test", "directory")
        // a long transaction of one host (an audit export, a slow command batch) that read its log
        const busy = yield* _openTransaction(
          sql,
          "select count(*) from hamlet_events where host = 'busy.partition.test'",
        )
        let registered: { settled?: PromiseSettledResult<void> } = {}
        let read: { settled?: PromiseSettledResult<unknown> } = {}
        try {
          registered = watchPromise(
            Effect.runPromise(registerHost(sql, "contract", "new.partition.test", "database")),
          )
          // before: `create table … partition of` waited for `busy` (ACCESS EXCLUSIVE on the log)…
          const isWaiting = () =>
            sql`select 1 from pg_locks l join pg_class c on c.oid = l.relation
                where c.relname = 'hamlet_events' and not l.granted`.then((rows) => rows.length > 0)
          for (let i = 0; i < 250 && registered.settled === undefined; i++) {
            if (yield* Effect.promise(isWaiting)) break
            yield* Effect.sleep("20 millis")
          }
          // …and the busy host's next read of its own log queued behind it
          read = watchPromise(sql`select count(*) from hamlet_events where host = 'busy.partition.test'`)
          yield* _eventually(() => read.settled !== undefined && registered.settled !== undefined)
        } finally {
          yield* Effect.promise(busy.end)
        }
        assert.strictEqual(read.settled?.status, "fulfilled", "the read waited for the open transaction")
        assert.strictEqual(
          registered.settled?.status,
          "fulfilled",
          "registering waited for the open transaction",
        )
        assert.deepStrictEqual(yield* _bound(sql, "new.partition.test"), [
          "FOR VALUES IN ('new.partition.test')",
        ])
      }),
  )

  it.effect("registerHost() attaches a partition table that was made and never attached", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const host = "half.partition.test"
      // what a registration stopped between making the table and attaching it leaves
      yield* query(() =>
        sql.unsafe(
          `create table ${partitionName(host)} (like hamlet_events including defaults including constraints)`,
        )
      )
      // two nodes registering it together: one attaches, the other finds it attached
      yield* Effect.all([
        registerHost(sql, "contract", host, "directory"),
        registerHost(sql, "contract", host, "directory"),
      ], { concurrency: "unbounded" })
      assert.deepStrictEqual(yield* _bound(sql, host), ["FOR VALUES IN ('half.partition.test')"])
      // the log works: the partition has the parent's (host, seq) and (host, stream, version) keys
      const event = { stream: "s", type: "Noted", data: {}, meta: {} }
      yield* withOwnerTransaction(sql, (tx) =>
        Effect.gen(function* () {
          const head = yield* readHead(tx, host)
          return yield* appendEvents(tx, head, host, "contract", [event], new Date())
        }))
      const [{ keys }] = yield* query(() =>
        sql`select string_agg(pg_get_indexdef(x.indexrelid), '; ' order by 1) as keys from pg_index x
            where x.indrelid = ${partitionName(host)}::regclass and x.indisunique`
      )
      assert.include(keys, "(host, seq)")
      assert.include(keys, "(host, stream, version)")
      const [{ n }] = yield* query(() =>
        sql`select count(*)::int as n from hamlet_events where host = ${host}`
      )
      assert.strictEqual(n, 1)
    }))

  it.effect("registerHost() refuses a name that is not a hostname, and a host whose log another project owns", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const bad = yield* Effect.flip(registerHost(sql, "contract", "Bad_Host", "database"))
      assert.deepStrictEqual([bad._tag, bad.message], ["BadHostname", '"Bad_Host" is not a hostname'])
      const host = "owned.partition.test"
      yield* registerHost(sql, "contract", host, "database")
      yield* query(() => sql`update hamlet_hosts set removed_at = now() where host = ${host}`)
      // removed, its log kept: still the first project's, never handed over
      const owned = yield* Effect.flip(registerHost(sql, "elsewhere", host, "database"))
      assert.deepStrictEqual(owned, new HostOwnedElsewhere({ host, owner: "contract", project: "elsewhere" }))
      assert.strictEqual(owned.message, `host ${host} belongs to project contract, not elsewhere`)
    }))

  // PGlite has one connection: no other transaction can hold a lock meanwhile
  it.effect.skipIf(kind === "pglite")(
    "registerHost() held up by a lock on the log fails after its lock_timeout, and a retry succeeds",
    () =>
      Effect.gen(function* () {
        const sql = yield* _setup
        const host = "locked.partition.test"
        // maintenance on the log (a manual ANALYZE, CREATE INDEX CONCURRENTLY) holds this lock
        const maintenance = yield* _openTransaction(
          sql,
          "lock table hamlet_events in share update exclusive mode",
        )
        let registered: { settled?: PromiseSettledResult<void> } = {}
        try {
          registered = watchPromise(
            Effect.runPromise(
              Effect.flip(registerHost(sql, "contract", host, "database", { lockTimeoutMs: 200 })).pipe(
                Effect.flatMap((error: RegisterHostError) =>
                  error._tag === "RegistrationLocked" ? Effect.void : Effect.die(error)
                ),
              ),
            ),
          )
          // before: it waited as long as the lock was held
          yield* _eventually(() => registered.settled !== undefined)
        } finally {
          yield* Effect.promise(maintenance.end)
        }
        assert.strictEqual(registered.settled?.status, "fulfilled", "it failed with RegistrationLocked")
        assert.deepStrictEqual(yield* _bound(sql, host), [])
        yield* registerHost(sql, "contract", host, "database")
        assert.deepStrictEqual(yield* _bound(sql, host), ["FOR VALUES IN ('locked.partition.test')"])
      }),
  )

  it.effect("a host transaction's log reads and appends lock its own partition only, however often they run", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const hosts = ["one.plans.test", "two.plans.test", "three.plans.test"]
      for (const host of hosts) yield* registerHost(sql, "contract", host, "directory")
      // host transactions let named statements go generic after five runs: a generic plan of a log
      // read would lock every host's partition at each run (an insert's names only the parent)
      const locked = yield* withHostTransaction(sql, hosts[0], (tx) =>
        Effect.gen(function* () {
          for (let i = 0; i < 8; i++) {
            const head = yield* readHead(tx, hosts[0])
            const event = { stream: `s${i}`, type: "Noted", data: {}, meta: {} }
            yield* appendEvents(tx, head, hosts[0], "contract", [event], new Date())
          }
          return yield* query(() =>
            tx`select distinct c.relname from pg_locks l join pg_class c on c.oid = l.relation
               where l.pid = pg_backend_pid() and c.relkind = 'r' and c.relname like 'hamlet_events_%'`
          )
        }))
      assert.deepStrictEqual(locked.map((r) => String(r.relname)), [partitionName(hosts[0])])
    }))

  it.effect("isSeqRace: a seq taken by another writer is a race to retry; a stream that exists is not", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const host = "race.partition.test"
      yield* registerHost(sql, "contract", host, "directory")
      const append = (head: Parameters<typeof appendEvents>[1], stream: string, startsStream = false) =>
        withHostTransaction(
          sql,
          host,
          (tx) =>
            appendEvents(tx, head, host, "contract", [{
              stream,
              type: "Noted",
              data: {},
              meta: {},
              startsStream,
            }], new Date()),
        )
      const head = yield* withOwnerTransaction(sql, (tx) => readHead(tx, host))
      yield* append(head, "first")
      // a writer that read the same head: its event takes the seq the first one took
      const race = yield* Effect.flip(append(head, "second"))
      assert.isTrue(isSeqRace(race), `${race.code} ${race.constraint}`)
      // a stream started again is a conflict every time, not a race
      const now = yield* withOwnerTransaction(sql, (tx) => readHead(tx, host))
      const exists = yield* Effect.flip(append(now, "first", true))
      assert.strictEqual(exists.code, "23505", "a unique violation")
      assert.isFalse(isSeqRace(exists), `${exists.code} ${exists.constraint}`)
    }))

  it.effect("streams named with quotes, backslashes and other scripts keep their versions across appends", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const host = "quoted.partition.test"
      yield* registerHost(sql, "contract", host, "directory")
      const streams = ["it's", "back\\slash", "E'x\\' or 1=1 --", "日本-🎭"]
      // each append reads the streams' versions from the log (no cache given)
      for (let round = 0; round < 2; round++) {
        yield* withHostTransaction(sql, host, (tx) =>
          Effect.gen(function* () {
            const head = yield* readHead(tx, host)
            const events = streams.map((stream) => ({ stream, type: "Noted", data: {}, meta: {} }))
            return yield* appendEvents(tx, head, host, "contract", events, new Date())
          }))
      }
      const rows = yield* query(() =>
        sql`select stream, array_agg(version order by version) as versions from hamlet_events
            where host = ${host} group by stream`
      )
      assert.deepStrictEqual(
        rows.map((r) => [String(r.stream), (r.versions as Array<number>).map(Number)]).sort(),
        [...streams].sort().map((s) => [s, [1, 2]]),
      )
    }))
}
