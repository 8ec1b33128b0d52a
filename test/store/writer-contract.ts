/**
 * The buffered replay writer must leave exactly the rows the live writer leaves: the same
 * projection operations, run through both into two schemas, end in identical tables —
 * with a tiny cache, so eviction and flush-before-read are exercised too.
 */
import { assert, type Vitest } from "@effect/vitest"
import { Effect, Schema } from "effect"
import type { SystemProjectionWriter } from "../../src/projects/access.ts"
import { makeBufferedProjectionWriter } from "../../src/store/buffered-writer.ts"
import { Database, query, type SqlTx } from "../../src/store/database.ts"
import { makeProjectionWriter } from "../../src/store/model-access.ts"
import { makePipeline } from "../../src/store/pipeline.ts"
import { schemaDdl } from "../../src/store/project-schema.ts"
import { withOwnerTransaction } from "../../src/store/transaction.ts"
import { Guest, Item, Tag } from "../../projects/horatio/model.ts"
import { defineModel } from "../../src/projects/model.ts"

/** Column types a project may choose: an array type, json (an object with a `type` key), numeric, varchar, timestamptz. */
const Odd = defineModel("odd", {
  id: Schema.String,
  labels: Schema.Array(Schema.String),
  doc: Schema.Struct({ type: Schema.String, n: Schema.Number }),
  price: Schema.Number,
  note: Schema.NullOr(Schema.String),
  at: Schema.String,
}, {
  columns: { labels: "text[]", doc: "json", price: "numeric(10,2)", note: "varchar(20)", at: "timestamptz" },
})

const odd = (n: number) => ({
  id: `o${n}`,
  labels: n % 2 ? ["a", 'b "c"'] : [],
  doc: { type: `t${n}`, n },
  price: n + 0.25,
  note: n % 3 ? `note ${n}` : null,
  at: at(n),
})

const HOST = "writer.example.com"
const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString()
const item = (id: string, n: number) => ({
  id,
  title: `item ${id}`,
  link: null,
  extract: null,
  owner_comment: null,
  tags: [`t${n % 3}`],
  comment_count: 0,
  created_at: at(n),
})

/** A little of everything a projection does, including reads between writes. */
const script = (db: SystemProjectionWriter) =>
  Effect.gen(function* () {
    for (let n = 0; n < 12; n++) {
      yield* db.insert(Item, item(`i${n}`, n))
      const tag = `t${n % 3}`
      if (yield* db.get(Tag, tag)) yield* db.increment(Tag, tag, "item_count")
      else yield* db.insert(Tag, { id: tag, item_count: 1 })
    }
    for (let n = 0; n < 12; n += 2) yield* db.increment(Item, `i${n}`, "comment_count", 2)
    for (const author of ["bob", "cy", "bob", "bob"]) {
      yield* db.incrementOrInsert(
        Guest,
        { id: author, comment_count: 1, first_seen_at: at(3) },
        "comment_count",
      )
    }
    yield* db.update(Item, "i3", { title: "renamed", tags: ["x", "y"] })
    yield* db.update(Item, "missing", { title: "nobody" })
    // nothing to set (an optional field absent from the event): no change, on a row not held too
    yield* db.update(Item, "ghost", { title: undefined })
    yield* db.update(Item, "i4", {})
    yield* db.softDelete(Item, "i5", new Date(at(99)))
    assert.strictEqual(yield* db.count(Item), 11)
    assert.strictEqual((yield* db.get(Guest, "bob"))?.comment_count, 3)
    yield* db.upsert(Guest, { id: "ann", comment_count: 1, first_seen_at: at(1) })
    yield* db.upsert(Guest, { id: "ann", comment_count: 5, first_seen_at: at(2) })
    yield* db.remove(Item, { id: "i7" })
    yield* db.insert(Item, item("i7", 70))
    const feed = yield* db.list(Item, { orderBy: [["created_at", "desc"]], limit: 3 })
    assert.deepStrictEqual(feed.map((r) => r.id), ["i7", "i11", "i10"])
    assert.strictEqual(yield* db.get(Item, "i5"), undefined)
    assert.strictEqual((yield* db.get(Item, "i5", { includeDeleted: true }))?.id, "i5")
    // runs of inserts with no read between them (combined when pipelined), interleaved with
    // another table, then a statement on the same table that must see them
    for (let n = 20; n < 25; n++) {
      yield* db.insert(Item, item(`i${n}`, n))
      yield* db.incrementOrInsert(Tag, { id: `t${n % 2}`, item_count: 1 }, "item_count")
    }
    yield* db.increment(Item, "i20", "comment_count", 3)
    yield* db.softDelete(Item, "i21", new Date(at(98)))
    assert.strictEqual(yield* db.count(Item), 15)
    // counters summed per id (new and stored rows), a counter that starts elsewhere than its
    // step (not combined), and a plain insert into a table with counters queued
    for (const tag of ["t0", "t9", "t9", "t1", "t9"]) {
      yield* db.incrementOrInsert(Tag, { id: tag, item_count: 1 }, "item_count")
    }
    yield* db.insert(Tag, { id: "t8", item_count: 4 })
    yield* db.incrementOrInsert(Tag, { id: "t8", item_count: 2 }, "item_count", 2)
    for (let i = 0; i < 2; i++) {
      yield* db.incrementOrInsert(
        Guest,
        { id: "dee", comment_count: 5, first_seen_at: at(4) },
        "comment_count",
        2,
      )
    }
    // custom column types, combined and alone
    for (let n = 0; n < 4; n++) yield* db.insert(Odd, odd(n))
    yield* db.upsert(Odd, { ...odd(1), note: "replaced" })
    yield* db.insert(Odd, odd(9))
    assert.strictEqual(yield* db.count(Odd), 5)
    assert.strictEqual((yield* db.get(Tag, "t9"))?.item_count, 3)
    assert.strictEqual((yield* db.get(Tag, "t8"))?.item_count, 6)
    assert.strictEqual((yield* db.get(Guest, "dee"))?.comment_count, 7)
    // a purge deletes only rows still soft-deleted before its cutoff: not one deleted at it, not
    // a live one, not one created again after its soft delete
    yield* db.softDelete(Item, "i9", new Date(at(50)))
    yield* db.remove(Item, { id: "i9" })
    yield* db.insert(Item, item("i9", 90))
    yield* db.purgeSoftDeleted(Item, ["i5", "i21", "i9", "i3", "nobody"], new Date(at(99)))
    assert.strictEqual(yield* db.get(Item, "i21", { includeDeleted: true }), undefined)
    assert.strictEqual((yield* db.get(Item, "i5", { includeDeleted: true }))?.id, "i5")
    assert.strictEqual((yield* db.get(Item, "i9"))?.created_at, at(90))
    assert.strictEqual(yield* db.count(Item), 15)
    yield* db.increment(Item, "i21", "comment_count") // a purged row stays gone, as in SQL
    yield* db.increment(Item, "i9", "comment_count")
    // a row removed by id and written again: the remove still happens first (a counter's new
    // row is an insert after it; an upsert's row starts without the old soft delete)
    yield* db.incrementOrInsert(Tag, { id: "r1", item_count: 1 }, "item_count")
    assert.strictEqual(yield* db.count(Tag), 6) // flushes
    yield* db.remove(Tag, { id: "r1" })
    yield* db.incrementOrInsert(Tag, { id: "r1", item_count: 1 }, "item_count")
    yield* db.insert(Item, item("r2", 62))
    yield* db.softDelete(Item, "r2", new Date(at(63)))
    assert.strictEqual(yield* db.count(Item), 15) // flushes
    yield* db.remove(Item, { id: "r2" })
    yield* db.upsert(Item, item("r2", 64))
    yield* db.insert(Item, item("r4", 68))
    yield* db.softDelete(Item, "r4", new Date(at(69)))
    assert.strictEqual(yield* db.count(Item), 16) // flushes
    yield* db.remove(Item, { id: "r4" })
    yield* db.insert(Item, item("r4", 70))
    // an upsert's row is as written, live again after a soft delete: one made while the row was
    // not loaded, and one made on a row read since
    yield* db.insert(Item, item("r3", 65))
    yield* db.remove(Item, { title: "nothing" }) // flushes and empties the cache
    yield* db.softDelete(Item, "r3", new Date(at(66)))
    yield* db.upsert(Item, item("r3", 67))
    assert.strictEqual((yield* db.get(Item, "r3"))?.created_at, at(67))
    yield* db.softDelete(Item, "r2", new Date(at(71)))
    assert.strictEqual(yield* db.get(Item, "r2"), undefined)
    yield* db.upsert(Item, item("r2", 72))
    assert.strictEqual((yield* db.get(Item, "r2"))?.created_at, at(72))
  })

const tables = (tx: SqlTx, schema: string) =>
  Effect.forEach(
    ["microblog_item", "tag", "guest", "odd"],
    (table) => query(() => tx.unsafe(`select * from "${schema}"."${table}" order by host, id`)),
  )

/** `tx`, counting the statements sent through it (tagged template calls and `unsafe`). */
const _counting = (tx: SqlTx) => {
  const counter = { statements: 0 }
  const counted = new Proxy(tx, {
    apply: (target, self, args) => {
      counter.statements++
      return Reflect.apply(target, self, args)
    },
    get: (target, prop) => {
      const value = Reflect.get(target, prop)
      if (prop !== "unsafe") return typeof value === "function" ? value.bind(target) : value
      return (...args: Parameters<SqlTx["unsafe"]>) => {
        counter.statements++
        return target.unsafe(...args)
      }
    },
  })
  return { tx: counted, counter }
}

export const describeWriterContract = (it: Vitest.MethodsNonLive<Database>): void => {
  it.effect("the buffered replay writer writes a hot row it no longer caches once per flush, not once per change", () =>
    Effect.gen(function* () {
      const { sql } = yield* Database
      const schema = `writer_hot_${Math.random().toString(36).slice(2, 8)}`
      const result = yield* withOwnerTransaction(sql, (tx) =>
        Effect.gen(function* () {
          yield* query(() => tx.unsafe(schemaDdl(schema, [Item, Tag], { withSecurity: false })))
          const { tx: counted, counter } = _counting(tx)
          const writer = makeBufferedProjectionWriter(counted, schema, HOST, 10)
          yield* writer.insert(Tag, { id: "hot", item_count: 0 })
          for (let n = 0; n < 30; n++) yield* writer.insert(Item, item(`h${n}`, n)) // "hot" is evicted
          yield* writer.flush
          const before = counter.statements
          for (let n = 0; n < 500; n++) {
            yield* writer.increment(Tag, "hot", "item_count")
            if (n % 100 === 0) yield* writer.softDelete(Item, `h${n / 100}`, new Date(at(n)))
          }
          yield* writer.flush
          const statements = counter.statements - before
          const [hot] = yield* query(() =>
            tx.unsafe(`select item_count from "${schema}".tag where id = 'hot'`)
          )
          const [deleted] = yield* query(() =>
            tx.unsafe(
              `select count(*)::int as n from "${schema}".microblog_item where deleted_at is not null`,
            )
          )
          return { statements, hot: hot.item_count, deleted: deleted.n }
        }))
      assert.strictEqual(result.hot, 500)
      assert.strictEqual(result.deleted, 5)
      assert.isAtMost(result.statements, 6) // an update per shape of change and flush, not 505
    }))

  it.effect("the buffered replay writer and the pipelined batch writer leave the same rows as the live writer", () =>
    Effect.gen(function* () {
      const { sql } = yield* Database
      const suffix = Math.random().toString(36).slice(2, 8)
      const [live, buffered, piped] = [
        `writer_live_${suffix}`,
        `writer_buf_${suffix}`,
        `writer_pipe_${suffix}`,
      ]
      const models = [Item, Tag, Guest, Odd]
      const result = yield* withOwnerTransaction(sql, (tx) =>
        Effect.gen(function* () {
          for (const schema of [live, buffered, piped]) {
            yield* query(() => tx.unsafe(schemaDdl(schema, models, { withSecurity: false })))
          }
          yield* script(makeProjectionWriter(tx, live, HOST))
          const writer = makeBufferedProjectionWriter(tx, buffered, HOST, 4)
          yield* script(writer)
          yield* writer.flush
          // inserts combined per table, sent before reads and other statements on their table
          const pipeline = makePipeline()
          const pipelined = makeProjectionWriter(tx, piped, HOST, pipeline)
          yield* script(pipelined)
          pipelined.sendQueued()
          yield* pipeline.flush
          return {
            live: yield* tables(tx, live),
            buffered: yield* tables(tx, buffered),
            piped: yield* tables(tx, piped),
          }
        }))
      assert.deepStrictEqual(result.buffered, result.live)
      assert.deepStrictEqual(result.piped, result.live)
      assert.isAbove(result.live[0].length, 10)
    }))
}
