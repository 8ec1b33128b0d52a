/**
 * The store contract, run against every back end (pglite.test.ts, postgres.test.ts):
 * migrations, host partitions, the event log's seq/version/hash guarantees, row-level
 * security, model DDL derivation, the host-scoped projection API (model-contract.ts) and
 * read lanes (read-lanes-contract.ts).
 */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { Sql } from "../../src/store/database.ts"
import { Database, query, UNIQUE_VIOLATION } from "../../src/store/database.ts"
import { canonicalJson, eventHash, GENESIS_HASH } from "../../src/store/event-hash.ts"
import {
  appendEvents,
  EMPTY_HEAD,
  type PendingEvent,
  readHead,
  registerHost,
  rowToStoredEvent,
} from "../../src/store/event-log.ts"
import { migrateCore, migrateSchema } from "../../src/store/migrations.ts"
import { withHostTransaction, withOwnerTransaction } from "../../src/store/transaction.ts"
import { type StoreKind, terminateSleeping, testDatabase } from "../support/database.ts"
import { hashedFields } from "../../src/audit/event-line.ts"
import { describeHostPartitionContract } from "./host-partition-contract.ts"
import { describeModelContract } from "./model-contract.ts"
import { describeReadLanesContract } from "./read-lanes-contract.ts"
import { describeWriterContract } from "./writer-contract.ts"

const _event = (stream: string, n: number): PendingEvent => ({
  stream,
  type: "Noted",
  data: { n, nested: { b: [1, 2], a: "x" } },
  meta: { requestId: `r${n}`, handler: "Note" },
})

/** Registers `host` and appends `events` in one owner transaction, continuing its head. */
const _append = (sql: Sql, host: string, events: ReadonlyArray<PendingEvent>) =>
  withOwnerTransaction(sql, (tx) =>
    Effect.gen(function* () {
      const head = yield* readHead(tx, host)
      return yield* appendEvents(tx, head, host, "contract", events, new Date())
    }))

const _rows = (sql: Sql, host: string) =>
  query(() => sql`select * from hamlet_events where host = ${host} order by seq`)

const _setup = Effect.gen(function* () {
  const { sql } = yield* Database
  yield* migrateCore(sql)
  return sql
})

export const describeStoreContract = (kind: StoreKind): void =>
  layer(testDatabase(kind), { excludeTestServices: true, timeout: 60_000 })(
    `store contract: ${kind}`,
    (it) => {
      it.effect("migrateCore() is idempotent: running it twice leaves one working schema", () =>
        Effect.gen(function* () {
          const sql = yield* _setup
          yield* migrateCore(sql)
          const tables = yield* query(() =>
            sql`select tablename from pg_tables where tablename in ('hamlet_events', 'hamlet_hosts') order by 1`
          )
          assert.deepStrictEqual(tables.map((t) => t.tablename), ["hamlet_events", "hamlet_hosts"])
        }))

      // PGlite has one connection: nothing else can hold a lock meanwhile
      it.effect.skipIf(kind === "pglite")(
        "a node starting on a migrated database queues behind no running transaction",
        () =>
          Effect.gen(function* () {
            const sql = yield* _setup
            // a running node's transaction reading hamlet_sessions (a session lookup, an expiry job)
            const reader = yield* Effect.promise(() => sql.reserve())
            try {
              yield* Effect.promise(() =>
                reader`begin`.then(() => reader`select count(*) from hamlet_sessions`)
              )
              // before: the start re-ran `alter table … enable row level security`, which waits for
              // that transaction (and queues every later query on the table behind itself)
              const exit = yield* Effect.exit(migrateCore(sql).pipe(Effect.timeout(3_000)))
              assert.isTrue(exit._tag === "Success", "migrateCore waited for a table lock")
            } finally {
              yield* Effect.promise(() => reader`rollback`.then(() => reader.release()))
            }
          }),
      )

      it.effect("a start re-runs the schema DDL when what it made was changed by hand or lost", () =>
        Effect.gen(function* () {
          const sql = yield* _setup
          // a restore without grants, security switched off for maintenance and left off
          yield* query(() => sql`revoke all on hamlet_events from hamlet_tenant`)
          yield* query(() => sql`alter table hamlet_sessions disable row level security`)
          yield* migrateCore(sql)
          const [state] = yield* query(() =>
            sql`select has_table_privilege('hamlet_tenant', 'hamlet_events', 'select') as granted,
                       (select relrowsecurity from pg_class where oid = 'hamlet_sessions'::regclass) as secured`
          )
          assert.deepStrictEqual({ granted: state.granted, secured: state.secured }, {
            granted: true,
            secured: true,
          })
        }))

      // PGlite has one connection: two starts cannot overlap
      it.effect.skipIf(kind === "pglite")(
        "nodes starting together run changed schema DDL once",
        () =>
          Effect.gen(function* () {
            const sql = yield* _setup
            yield* query(() => sql`create table if not exists ddl_runs (n int)`)
            const ddl = `insert into ddl_runs values (1); select pg_sleep(0.3)`
            yield* Effect.all([
              migrateSchema(sql, ddl, { tables: ["ddl_runs"] }),
              migrateSchema(sql, ddl, { tables: ["ddl_runs"] }),
            ], { concurrency: "unbounded" })
            const [{ runs }] = yield* query(() => sql`select count(*)::int as runs from ddl_runs`)
            assert.strictEqual(runs, 1)
          }),
      )

      it.effect("registerHost() creates one list partition per host and is idempotent", () =>
        Effect.gen(function* () {
          const sql = yield* _setup
          yield* registerHost(sql, "contract", "part-a.example.com", "directory")
          yield* registerHost(sql, "contract", "part-a.example.com", "directory")
          yield* registerHost(sql, "contract", "part-b.example.com", "database")
          const partitions = yield* query(() =>
            sql`select pg_get_expr(c.relpartbound, c.oid) as bound from pg_inherits i
              join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
              where p.relname = 'hamlet_events' and pg_get_expr(c.relpartbound, c.oid) like '%part-%'
              order by 1`
          )
          assert.deepStrictEqual(partitions.map((p) => p.bound), [
            "FOR VALUES IN ('part-a.example.com')",
            "FOR VALUES IN ('part-b.example.com')",
          ])
          const hosts = yield* query(() =>
            sql`select host, source from hamlet_hosts where host like 'part-%' order by host`
          )
          assert.deepStrictEqual(hosts.map((h) => [h.host, h.source]), [
            ["part-a.example.com", "directory"],
            ["part-b.example.com", "database"],
          ])
        }))

      it.effect("appendEvents() gives gapless per-host seq from 1 and per-stream versions", () =>
        Effect.gen(function* () {
          const sql = yield* _setup
          const host = "seq-a.example.com"
          yield* registerHost(sql, "contract", host, "directory")
          yield* _append(sql, host, [_event("s1", 1), _event("s2", 2), _event("s1", 3)])
          yield* _append(sql, host, [_event("s1", 4)])
          const rows = yield* _rows(sql, host)
          assert.deepStrictEqual(rows.map((r) => [r.seq, r.stream, r.version]), [
            [1, "s1", 1],
            [2, "s2", 1],
            [3, "s1", 2],
            [4, "s1", 3],
          ])
        }))

      it.effect("two hosts have independent seqs", () =>
        Effect.gen(function* () {
          const sql = yield* _setup
          for (const host of ["ind-a.example.com", "ind-b.example.com"]) {
            yield* registerHost(sql, "contract", host, "directory")
          }
          yield* _append(sql, "ind-a.example.com", [_event("s", 1), _event("s", 2), _event("s", 3)])
          yield* _append(sql, "ind-b.example.com", [_event("s", 1), _event("s", 2)])
          yield* _append(sql, "ind-a.example.com", [_event("s", 4)])
          const a = yield* _rows(sql, "ind-a.example.com")
          const b = yield* _rows(sql, "ind-b.example.com")
          assert.deepStrictEqual(a.map((r) => r.seq), [1, 2, 3, 4])
          assert.deepStrictEqual(b.map((r) => r.seq), [1, 2])
        }))

      it.effect("the hash chain recomputes from rows as Postgres returns them", () =>
        Effect.gen(function* () {
          const sql = yield* _setup
          const host = "chain.example.com"
          yield* registerHost(sql, "contract", host, "directory")
          yield* _append(sql, host, [_event("s", 1), _event("t", 2)])
          yield* _append(sql, host, [_event("s", 3)])
          const rows = yield* _rows(sql, host)
          let prev = GENESIS_HASH
          for (const r of rows) {
            const expected = eventHash(prev, hashedFields(rowToStoredEvent(r)))
            assert.strictEqual(r.hash, expected, `hash of seq ${r.seq}`)
            prev = r.hash
          }
          assert.strictEqual(rows.length, 3)
          // jsonb reorders keys; the canonical form does not care
          assert.strictEqual(canonicalJson(rows[0].data), '{"n":1,"nested":{"a":"x","b":[1,2]}}')
        }))

      it.effect("a second append from a stale head fails with unique_violation on (host, seq)", () =>
        Effect.gen(function* () {
          const sql = yield* _setup
          const host = "race.example.com"
          yield* registerHost(sql, "contract", host, "directory")
          yield* _append(sql, host, [_event("s", 1)])
          const error = yield* Effect.flip(
            withOwnerTransaction(
              sql,
              (tx) => appendEvents(tx, EMPTY_HEAD, host, "contract", [_event("other", 2)], new Date()),
            ),
          )
          assert.strictEqual(error.code, UNIQUE_VIOLATION)
          assert.deepStrictEqual(
            (yield* _rows(sql, host)).map((r) => r.stream),
            ["s"],
          )
        }))

      it.effect("(host, stream, version) is unique: a duplicate stream version is refused", () =>
        Effect.gen(function* () {
          const sql = yield* _setup
          const host = "version.example.com"
          yield* registerHost(sql, "contract", host, "directory")
          yield* _append(sql, host, [_event("s", 1)])
          const error = yield* Effect.flip(
            query(() =>
              sql`insert into hamlet_events (host, seq, project, stream, version, type, data, meta, recorded_at, hash)
              values (${host}, 2, 'contract', 's', 1, 'Noted', '{}', '{}', now(), 'x')`
            ),
          )
          assert.strictEqual(error.code, UNIQUE_VIOLATION)
        }))

      // PGlite's one in-process backend cannot be terminated from another session
      it.effect.skipIf(kind === "pglite")(
        "a connection lost in a host transaction fails it; the node goes on with a fresh one",
        () =>
          Effect.gen(function* () {
            const sql = yield* _setup
            const lost = Effect.runPromiseExit(
              withHostTransaction(
                sql,
                "lost.tx.test",
                (tx) => query(() => tx`select pg_sleep(5) /* tx-lost */`),
              ),
            )
            yield* terminateSleeping(sql, "tx-lost")
            const exit = yield* Effect.promise(() => lost)
            assert.isTrue(exit._tag === "Failure")
            // before: the rollback sent on the dead connection crashed the process from a timer
            const after = yield* withHostTransaction(
              sql,
              "lost.tx.test",
              (tx) => query(() => tx`select 3 as n`),
            )
            assert.strictEqual(after[0].n, 3)
          }),
      )

      describeHostPartitionContract(it, kind)
      describeModelContract(it)
      describeWriterContract(it)
      describeReadLanesContract(it, kind)
    },
  )
