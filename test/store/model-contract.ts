/**
 * The model half of the store contract: row-level security on project tables, DDL
 * derived from model Schemas, and the host-scoped projection writer/reader.
 */
import { assert, type Vitest } from "@effect/vitest"
import { Effect, Schema } from "effect"
import process from "node:process"
import { Database, type DatabaseError, query } from "../../src/store/database.ts"
import { migrateCore } from "../../src/store/migrations.ts"
import type { ProjectionWriter } from "../../src/projects/access.ts"
import { makeBufferedProjectionWriter } from "../../src/store/buffered-writer.ts"
import { makeProjectionWriter } from "../../src/store/model-access.ts"
import { migrateProject } from "../../src/store/project-schema.ts"
import { makeReadLanes } from "../../src/store/read-lanes.ts"
import { withHostTransaction } from "../../src/store/transaction.ts"
import { defineModel } from "../../src/projects/model.ts"
import horatio from "../../projects/horatio/project.ts"

const _setup = Effect.gen(function* () {
  const { sql } = yield* Database
  yield* migrateCore(sql)
  return sql
})

export const describeModelContract = (it: Vitest.MethodsNonLive<Database>): void => {
  it.effect("RLS: a host transaction sees only its host's rows even without WHERE", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      yield* migrateProject(sql, "horatio", horatio.models ?? [])
      for (const [host, id] of [["rls-a.example.com", "a1"], ["rls-b.example.com", "b1"]]) {
        yield* query(() =>
          sql`insert into horatio.microblog_item (host, id, title, tags, comment_count, created_at)
              values (${host}, ${id}, 'T', '[]', 0, now())`
        )
      }
      const seen = yield* withHostTransaction(
        sql,
        "rls-a.example.com",
        (tx) => query(() => tx`select * from horatio.microblog_item`),
      )
      assert.deepStrictEqual(seen.map((r) => [r.host, r.id]), [["rls-a.example.com", "a1"]])
    }))

  it.effect("host reads see only their host's rows, even without WHERE, and cannot write", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      yield* migrateProject(sql, "horatio", horatio.models ?? [])
      for (const [host, id] of [["read-a.example.com", "ra1"], ["read-b.example.com", "rb1"]]) {
        yield* query(() =>
          sql`insert into horatio.microblog_item (host, id, title, tags, comment_count, created_at)
              values (${host}, ${id}, 'T', '[]', 0, now())`
        )
      }
      const lanes = makeReadLanes(sql)
      // sent together: their transactions share a connection's pipeline, one after another
      const seen = yield* query(() =>
        Promise.all(
          ["read-a.example.com", "read-b.example.com", "read-a.example.com"].map((host) =>
            lanes.run(host, "select host from horatio.microblog_item", [])
          ),
        )
      )
      assert.deepStrictEqual(seen.map((rows) => [...new Set(rows.map((r) => r.host))]), [
        ["read-a.example.com"],
        ["read-b.example.com"],
        ["read-a.example.com"],
      ])
      const write = yield* Effect.flip(query(() =>
        lanes.run(
          "read-a.example.com",
          `insert into horatio.microblog_item (host, id, title, tags, comment_count, created_at)
           values ('read-a.example.com', 'sneaky-write', 'T', '[]', 0, now())`,
          [],
        )
      ))
      assert.strictEqual(write.code, "25006") // read_only_sql_transaction
      // the refused write aborted its own transaction only: the next read on the lane answers
      const after = yield* query(() =>
        lanes.run("read-b.example.com", "select host from horatio.microblog_item", [])
      )
      assert.deepStrictEqual(after.map((r) => r.host), ["read-b.example.com"])
    }))

  it.effect("RLS: a host transaction cannot insert a row for another host", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      yield* migrateProject(sql, "horatio", horatio.models ?? [])
      const error = yield* Effect.flip(
        withHostTransaction(
          sql,
          "rls-a.example.com",
          (tx) =>
            query(() =>
              tx`insert into horatio.microblog_item (host, id, title, tags, comment_count, created_at)
             values ('rls-b.example.com', 'sneaky', 'T', '[]', 0, now())`
            ),
        ),
      )
      assert.strictEqual(error.code, "42501") // insufficient_privilege: RLS with check
      const rows = yield* query(() => sql`select id from horatio.microblog_item where id = 'sneaky'`)
      assert.strictEqual(rows.length, 0)
    }))

  it.effect("model DDL: host first, (host, id) key, deleted_at, jsonb arrays, new fields added", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const v1 = defineModel("ddl_note", {
        id: Schema.String,
        title: Schema.String,
        tags: Schema.Array(Schema.String),
        score: Schema.Number,
      }, { softDelete: true })
      yield* migrateProject(sql, "ddlcheck", [v1])
      yield* migrateProject(sql, "ddlcheck", [v1])
      const columns = () =>
        query(() =>
          sql`select column_name, data_type, is_nullable from information_schema.columns
              where table_schema = 'ddlcheck' and table_name = 'ddl_note' order by ordinal_position`
        )
      const before = yield* columns()
      assert.deepStrictEqual(before.map((c) => [c.column_name, c.data_type, c.is_nullable]), [
        ["host", "text", "NO"],
        ["id", "text", "NO"],
        ["title", "text", "NO"],
        ["tags", "jsonb", "NO"],
        ["score", "double precision", "NO"],
        ["deleted_at", "timestamp with time zone", "YES"],
      ])
      const key = yield* query(() =>
        sql`select a.attname from pg_index i
            join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
            where i.indrelid = 'ddlcheck.ddl_note'::regclass and i.indisprimary
            order by array_position(i.indkey::int2[], a.attnum)`
      )
      assert.deepStrictEqual(key.map((k) => k.attname), ["host", "id"])
      const indexes = () =>
        query(() => sql`select indexname from pg_indexes where schemaname = 'ddlcheck' order by 1`).pipe(
          Effect.map((rows) => rows.map((r) => String(r.indexname))),
        )
      // the key serves lookups by host: no second index on host for every insert to update
      assert.deepStrictEqual(yield* indexes(), ["ddl_note_pkey"])
      // a table made by an earlier version has one: the next migration drops it
      yield* query(() => sql`create index ddl_note_host_idx on ddlcheck.ddl_note (host)`)
      const v2 = defineModel("ddl_note", { ...v1.schema.fields, summary: Schema.NullOr(Schema.String) }, {
        softDelete: true,
      })
      yield* migrateProject(sql, "ddlcheck", [v2])
      const after = yield* columns()
      assert.deepStrictEqual(after.at(-1)?.column_name, "summary")
      assert.strictEqual(after.length, before.length + 1)
      assert.deepStrictEqual(yield* indexes(), ["ddl_note_pkey"])
      // the same models again after the schema was dropped by hand: made again, not skipped
      yield* query(() => sql`drop schema ddlcheck cascade`)
      yield* migrateProject(sql, "ddlcheck", [v2])
      const names = (rows: ReadonlyArray<{ column_name?: unknown }>) =>
        rows.map((c) => String(c.column_name)).sort()
      assert.deepStrictEqual(names(yield* columns()), names(after))
    }))

  it.effect("a field removed from a model leaves its column and data, and inserts still succeed", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const host = "removed.example.com"
      const v1 = defineModel("post", { id: Schema.String, title: Schema.String, body: Schema.String })
      yield* migrateProject(sql, "mremoved", [v1])
      yield* withHostTransaction(
        sql,
        host,
        (tx) =>
          makeProjectionWriter(tx, "mremoved", host).insert(v1, { id: "p0", title: "t0", body: "kept" }),
      )
      const v2 = defineModel("post", { id: Schema.String, title: Schema.String })
      yield* migrateProject(sql, "mremoved", [v2]) // the next start
      yield* withHostTransaction(sql, host, (tx) =>
        Effect.gen(function* () {
          const db = makeProjectionWriter(tx, "mremoved", host)
          yield* db.insert(v2, { id: "p1", title: "t" })
          yield* db.upsert(v2, { id: "p2", title: "u" })
        }))
      const rows = yield* query(() => sql`select id, body from mremoved.post order by id`)
      assert.deepStrictEqual(rows.map((r) => [r.id, r.body]), [["p0", "kept"], ["p1", null], ["p2", null]])
      // Hamlet's own columns keep their constraints
      const notNull = yield* query(() =>
        sql`select column_name from information_schema.columns
            where table_schema = 'mremoved' and table_name = 'post' and is_nullable = 'NO' order by ordinal_position`
      )
      assert.deepStrictEqual(notNull.map((c) => c.column_name), ["host", "id", "title"])
    }))

  it.effect("a field made nullable accepts null at the next start", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const host = "nullable.example.com"
      const v1 = defineModel("post", { id: Schema.String, body: Schema.String }, { softDelete: true })
      yield* migrateProject(sql, "mnullable", [v1])
      const v2 = defineModel("post", {
        id: Schema.String,
        body: Schema.optional(Schema.NullOr(Schema.String)),
      }, {
        softDelete: true,
      })
      yield* migrateProject(sql, "mnullable", [v2])
      yield* withHostTransaction(
        sql,
        host,
        (tx) => makeProjectionWriter(tx, "mnullable", host).insert(v2, { id: "p1", body: null }),
      )
      const rows = yield* query(() => sql`select id, body from mnullable.post`)
      assert.deepStrictEqual(rows.map((r) => [r.id, r.body]), [["p1", null]])
    }))

  it.effect("a field whose type changed fails the migration, naming table, column and both types", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const v1 = defineModel("post", {
        id: Schema.String,
        score: Schema.String,
        at: Schema.String,
        amount: Schema.String,
      }, { columns: { at: "timestamptz", amount: "numeric(12,2)" } })
      yield* migrateProject(sql, "mtyped", [v1])
      // the same types under other spellings are no change
      const same = defineModel("post", {
        id: Schema.String,
        score: Schema.TemplateLiteral(["s", Schema.String]),
        at: Schema.String,
        amount: Schema.String,
      }, { columns: { at: "timestamp with time zone", amount: "numeric(12,2)" } })
      yield* migrateProject(sql, "mtyped", [same])
      const v2 = defineModel("post", { id: Schema.String, score: Schema.Number, at: Schema.String }, {
        columns: { at: "timestamptz" },
      })
      const error = yield* Effect.flip(migrateProject(sql, "mtyped", [v2]))
      assert.include(error.message, `"mtyped"."post"."score"`)
      assert.include(error.message, "text")
      assert.include(error.message, "double precision")
      assert.include(error.message, "new name")
      // nothing was converted, and the failed migration is not recorded as done: it fails again
      const type = yield* query(() =>
        sql`select data_type from information_schema.columns
            where table_schema = 'mtyped' and table_name = 'post' and column_name = 'score'`
      )
      assert.strictEqual(type[0].data_type, "text")
      const again = yield* Effect.flip(migrateProject(sql, "mtyped", [v2]))
      assert.include(again.message, `"mtyped"."post"."score"`)
    }))

  it.effect("reads give the same values on the JSON path and the row-by-row path", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const fields = {
        id: Schema.String,
        label: Schema.NullOr(Schema.String),
        score: Schema.Number,
        ok: Schema.Boolean,
        extra: Schema.Struct({ n: Schema.Number }),
        at: Schema.String,
      }
      // the same columns, once as exact JSON types, once with a numeric column (row by row)
      const Exact = defineModel("reading_exact", fields, { softDelete: true, columns: { at: "timestamptz" } })
      const Rows = defineModel("reading_rows", { ...fields, amount: Schema.String }, {
        softDelete: true,
        columns: { at: "timestamptz", amount: "numeric" },
      })
      yield* migrateProject(sql, "readpaths", [Exact, Rows])
      const host = "paths.example.com"
      const base = [
        {
          id: "a",
          label: 'it\'s "quoted" ✓',
          score: 1.5,
          ok: true,
          extra: { n: 1 },
          at: "2024-01-02T03:04:05.678Z",
        },
        { id: "b", label: null, score: -2, ok: false, extra: { n: 2 }, at: "2024-01-03T00:00:00.000Z" },
        // JSON has no NaN or ±Infinity: Postgres renders them as strings, the reader gives numbers back
        { id: "c", label: "NaN", score: NaN, ok: true, extra: { n: 3 }, at: "2024-01-04T00:00:00.000Z" },
        {
          id: "d",
          label: 'Infinity"',
          score: -Infinity,
          ok: true,
          extra: { n: 4 },
          at: "2024-01-05T00:00:00.000Z",
        },
      ]
      const read = yield* withHostTransaction(sql, host, (tx) =>
        Effect.gen(function* () {
          const db = makeProjectionWriter(tx, "readpaths", host)
          for (const row of base) {
            yield* db.insert(Exact, row)
            yield* db.insert(Rows, { ...row, amount: "10.50" })
          }
          return {
            exact: yield* db.list(Exact, { orderBy: [["at", "desc"]] }),
            rows: yield* db.list(Rows, { orderBy: [["at", "desc"]] }),
            one: yield* db.get(Exact, "a"),
            none: yield* db.get(Exact, "zz"),
            empty: yield* db.list(Exact, { where: { id: "zz" } }),
          }
        }))
      const expected = [...base].reverse().map((r) => ({ ...r, deleted_at: null }))
      assert.deepStrictEqual(read.exact.map((r) => ({ ...r })), expected)
      assert.deepStrictEqual(
        read.rows.map((r) => ({ ...r })),
        expected.map((r) => ({ ...r, amount: "10.50" })),
      )
      assert.deepStrictEqual({ ...read.one } as Record<string, unknown>, expected.at(-1))
      assert.strictEqual(read.none, undefined)
      assert.deepStrictEqual(read.empty, [])
    }))

  it.effect("date and timestamp columns read back as the text written, on both read paths, in any zones", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const fields = { id: Schema.String, day: Schema.String, at: Schema.String, stamp: Schema.String }
      const columns = { day: "date", at: "timestamp", stamp: "timestamptz" }
      const Exact = defineModel("times_exact", fields, { columns })
      const Rows = defineModel("times_rows", { ...fields, amount: Schema.String }, {
        columns: { ...columns, amount: "numeric" },
      })
      yield* migrateProject(sql, "timepaths", [Exact, Rows])
      const host = "times.example.com"
      const row = {
        id: "t1",
        day: "2024-03-05",
        at: "2024-03-05T10:00:00.000Z",
        stamp: "2024-03-05T23:30:00.000Z",
      }
      // neither this process nor the database session runs in UTC
      const zone = process.env.TZ
      const read = yield* Effect.acquireUseRelease(
        Effect.sync(() => process.env.TZ = "America/New_York"),
        () =>
          withHostTransaction(sql, host, (tx) =>
            Effect.gen(function* () {
              yield* query(() => tx`set local timezone = 'Asia/Tokyo'`)
              const db = makeProjectionWriter(tx, "timepaths", host)
              yield* db.insert(Exact, row)
              yield* db.insert(Rows, { ...row, amount: "1.50" })
              return [
                yield* db.get(Exact, "t1"),
                ...(yield* db.list(Exact)),
                yield* db.get(Rows, "t1"),
                ...(yield* db.list(Rows)),
              ]
            })),
        () =>
          Effect.sync(() => {
            if (zone === undefined) delete process.env.TZ
            else process.env.TZ = zone
          }),
      )
      const expected = [row, row, { ...row, amount: "1.50" }, { ...row, amount: "1.50" }]
      assert.deepStrictEqual(read.map((r) => ({ ...r })), expected)
    }))

  it.effect("a Schema.Date field is a timestamptz column and reads back as a Date: live, buffered, on both read paths", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const fields = {
        id: Schema.String,
        when: Schema.optional(Schema.Date),
        at: Schema.Date,
        day: Schema.NullOr(Schema.Date),
        label: Schema.String,
      }
      const Exact = defineModel("dated", fields, { columns: { day: "date" } })
      const Rows = defineModel("dated_rows", { ...fields, amount: Schema.String }, {
        columns: { day: "date", amount: "numeric" },
      })
      yield* migrateProject(sql, "datefields", [Exact, Rows])
      const types = yield* query(() =>
        sql`select column_name, data_type from information_schema.columns
            where table_schema = 'datefields' and table_name = 'dated' order by ordinal_position`
      )
      assert.deepStrictEqual(types.map((c) => [c.column_name, c.data_type]), [
        ["host", "text"],
        ["id", "text"],
        ["when", "timestamp with time zone"],
        ["at", "timestamp with time zone"],
        ["day", "date"],
        ["label", "text"],
      ])
      const host = "dates.example.com"
      const at = new Date("2024-03-05T23:30:00.123Z")
      const read = yield* withHostTransaction(sql, host, (tx) =>
        Effect.gen(function* () {
          const db = makeProjectionWriter(tx, "datefields", host)
          yield* db.insert(Exact, { id: "d1", at, day: new Date("2024-03-05T00:00:00.000Z"), label: "x" })
          yield* db.insert(Rows, { id: "d1", at, day: null, label: "x", amount: "1.5" })
          yield* db.update(Exact, "d1", { when: new Date("1965-08-01T00:00:00.000Z") })
          yield* db.upsert(Rows, { id: "d2", when: at, at, day: null, label: "y", amount: "2" })
          const buffered = makeBufferedProjectionWriter(tx, "datefields", host)
          yield* buffered.insert(Exact, { id: "d3", at, day: null, label: "z" })
          yield* buffered.update(Exact, "d1", { label: "x!" })
          yield* buffered.flush
          return {
            exact: [yield* db.get(Exact, "d1"), ...(yield* db.list(Exact, { orderBy: [["id", "asc"]] }))],
            rows: [yield* db.get(Rows, "d2"), ...(yield* db.list(Rows, { orderBy: [["id", "asc"]] }))],
            byDate: yield* db.list(Exact, { where: { at }, orderBy: [["id", "asc"]] }),
            buffered: yield* buffered.get(Exact, "d3"),
          }
        }))
      const iso = (row: object | undefined) =>
        Object.fromEntries(
          Object.entries(row ?? {}).map(([k, v]) => [k, v instanceof Date ? `Date ${v.toISOString()}` : v]),
        )
      const d1 = {
        id: "d1",
        when: "Date 1965-08-01T00:00:00.000Z",
        at: "Date 2024-03-05T23:30:00.123Z",
        day: "Date 2024-03-05T00:00:00.000Z",
        label: "x!",
      }
      const d3 = { id: "d3", at: "Date 2024-03-05T23:30:00.123Z", day: null, label: "z" }
      assert.deepStrictEqual(read.exact.map(iso), [d1, d1, d3])
      assert.deepStrictEqual(read.rows.map(iso), [
        { id: "d2", when: "Date 2024-03-05T23:30:00.123Z", at: d1.at, day: null, label: "y", amount: "2" },
        { id: "d1", at: d1.at, day: null, label: "x", amount: "1.5" },
        { id: "d2", when: "Date 2024-03-05T23:30:00.123Z", at: d1.at, day: null, label: "y", amount: "2" },
      ])
      assert.deepStrictEqual(read.byDate.map((r) => r.id), ["d1", "d3"])
      assert.deepStrictEqual(iso(read.buffered), d3)
      // the model's own Schema takes what was read
      for (const row of read.exact) Schema.decodeUnknownSync(Exact.schema)(row)
      for (const row of read.rows) Schema.decodeUnknownSync(Rows.schema)(row)
    }))

  it.effect("an optional field's null reads back as a missing key, a nullable field's as null, on every read path", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const fields = {
        id: Schema.String,
        note: Schema.optional(Schema.String),
        tag: Schema.NullOr(Schema.String),
        // optional and nullable: its null is a value, kept
        maybe: Schema.optional(Schema.NullOr(Schema.String)),
      }
      const Exact = defineModel("opt", fields)
      const Rows = defineModel("opt_rows", { ...fields, amount: Schema.String }, {
        columns: { amount: "numeric" },
      })
      yield* migrateProject(sql, "optional", [Exact, Rows])
      const host = "opt.example.com"
      const read = yield* withHostTransaction(sql, host, (tx) =>
        Effect.gen(function* () {
          const db = makeProjectionWriter(tx, "optional", host)
          yield* db.insert(Exact, { id: "o1", tag: null, maybe: null })
          yield* db.insert(Exact, { id: "o2", note: "hi", tag: "x" })
          yield* db.insert(Rows, { id: "o1", tag: null, amount: "1" })
          const buffered = makeBufferedProjectionWriter(tx, "optional", host)
          yield* buffered.insert(Exact, { id: "o3", tag: null })
          return {
            exact: [yield* db.get(Exact, "o1"), ...(yield* db.list(Exact, { orderBy: [["id", "asc"]] }))],
            rows: [yield* db.get(Rows, "o1"), ...(yield* db.list(Rows))],
            buffered: [yield* buffered.get(Exact, "o3"), yield* buffered.get(Exact, "o1")],
          }
        }))
      const plain = (rows: ReadonlyArray<object | undefined>) => rows.map((r) => ({ ...r }))
      assert.deepStrictEqual(plain(read.exact), [
        { id: "o1", tag: null, maybe: null },
        { id: "o1", tag: null, maybe: null },
        { id: "o2", note: "hi", tag: "x", maybe: null },
      ])
      assert.deepStrictEqual(plain(read.rows), [{ id: "o1", tag: null, maybe: null, amount: "1" }, {
        id: "o1",
        tag: null,
        maybe: null,
        amount: "1",
      }])
      assert.deepStrictEqual(plain(read.buffered), [{ id: "o3", tag: null, maybe: null }, {
        id: "o1",
        tag: null,
        maybe: null,
      }])
      // the model's own Schema takes what was read
      for (const row of read.exact) Schema.decodeUnknownSync(Exact.schema)(row)
    }))

  it.effect("projection writer and reader round-trip rows within one host", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const Note = defineModel("note", {
        id: Schema.String,
        title: Schema.String,
        tags: Schema.Array(Schema.String),
        hits: Schema.Number,
      }, { softDelete: true })
      yield* migrateProject(sql, "roundtrip", [Note])
      const host = "rt.example.com"
      const run = <A>(
        body: (db: ProjectionWriter) => Effect.Effect<A, DatabaseError>,
      ) => withHostTransaction(sql, host, (tx) => body(makeProjectionWriter(tx, "roundtrip", host)))
      yield* run((db) =>
        Effect.gen(function* () {
          yield* db.insert(Note, { id: "n1", title: "one", tags: ["a", "b"], hits: 0 })
          yield* db.insert(Note, { id: "n2", title: "two", tags: [], hits: 0 })
          yield* db.upsert(Note, { id: "n2", title: "two again", tags: ["c"], hits: 5 })
          yield* db.update(Note, "n1", { title: "one!" })
          yield* db.increment(Note, "n1", "hits")
          yield* db.increment(Note, "n1", "hits", 2)
          yield* db.incrementOrInsert(Note, { id: "n3", title: "three", tags: [], hits: 1 }, "hits")
          yield* db.incrementOrInsert(Note, { id: "n3", title: "ignored", tags: [], hits: 1 }, "hits", 4)
        })
      )
      const listed = yield* run((db) => db.list(Note, { orderBy: [["id", "asc"]] }))
      assert.deepStrictEqual(listed.map((r): Record<string, unknown> => ({ ...r })), [
        { id: "n1", title: "one!", tags: ["a", "b"], hits: 3, deleted_at: null },
        { id: "n2", title: "two again", tags: ["c"], hits: 5, deleted_at: null },
        { id: "n3", title: "three", tags: [], hits: 5, deleted_at: null },
      ])
      yield* run((db) => db.remove(Note, { id: "n3" }))
      yield* run((db) => db.softDelete(Note, "n1", new Date("2024-01-02T03:04:05.678Z")))
      const visible = yield* run((db) => db.list(Note))
      assert.deepStrictEqual(visible.map((r) => r.id), ["n2"])
      assert.strictEqual(yield* run((db) => db.get(Note, "n1")), undefined)
      const all = yield* run((db) => db.list(Note, { includeDeleted: true, orderBy: [["id", "asc"]] }))
      assert.deepStrictEqual(all.map((r) => [r.id, (r as { deleted_at?: unknown }).deleted_at]), [
        ["n1", "2024-01-02T03:04:05.678Z"],
        ["n2", null],
      ])
      assert.strictEqual(yield* run((db) => db.count(Note)), 1)
      yield* run((db) => db.remove(Note, { id: "n2" }))
      const rest = yield* run((db) => db.list(Note, { includeDeleted: true }))
      assert.deepStrictEqual(rest.map((r) => r.id), ["n1"])
      // another host sees none of it
      const other = yield* withHostTransaction(
        sql,
        "rt-other.example.com",
        (tx) =>
          makeProjectionWriter(tx, "roundtrip", "rt-other.example.com").list(Note, {
            includeDeleted: true,
          }),
      )
      assert.deepStrictEqual(other, [])
    }))

  it.effect("list's limit and offset: Infinity is no limit, huge ones are clamped, fractions floored, NaN refused", () =>
    Effect.gen(function* () {
      const sql = yield* _setup
      const Row = defineModel("bounded", { id: Schema.String })
      yield* migrateProject(sql, "bounds", [Row])
      const host = "bounds.example.com"
      const run = <A, E>(body: (db: ProjectionWriter) => Effect.Effect<A, E>) =>
        withHostTransaction(sql, host, (tx) => body(makeProjectionWriter(tx, "bounds", host)))
      yield* run((db) => Effect.forEach(["a", "b", "c"], (id) => db.insert(Row, { id })))
      const ids = (options: { limit?: number; offset?: number }) =>
        run((db) => db.list(Row, { orderBy: [["id", "asc"]], ...options })).pipe(
          Effect.map((rows) => rows.map((r) => r.id).join("")),
        )
      assert.deepStrictEqual(
        [
          yield* ids({ limit: Infinity }),
          yield* ids({ limit: 1e30 }),
          yield* ids({ limit: Number.MAX_VALUE }),
          yield* ids({ limit: 2.9 }),
          yield* ids({ limit: -Infinity }),
          yield* ids({ limit: -1 }),
          yield* ids({ offset: 1e30 }),
          yield* ids({ offset: Infinity }),
          yield* ids({ offset: 1.5, limit: 1 }),
          yield* ids({ offset: -Infinity }),
        ],
        ["abc", "abc", "abc", "ab", "", "", "", "", "b", "abc"],
      )
      for (const options of [{ limit: NaN }, { offset: NaN }]) {
        const refused = yield* Effect.exit(ids(options))
        assert.isTrue(refused._tag === "Failure")
        const text = String(refused._tag === "Failure" ? refused.cause : "")
        assert.match(text, /bounded: list's (limit|offset) is NaN/)
        assert.notMatch(text, /invalid input syntax/)
      }
    }))
}
