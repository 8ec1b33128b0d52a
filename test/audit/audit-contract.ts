/**
 * The audit contract, run on every store (PGlite and Postgres): verify finds tampered and
 * deleted events by seq, drift is reported per cell and repaired for one host only, and
 * `--at` reproduces a snapshot of the read tables. Drives a real server over HTTP.
 */
import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type LogPoint } from "../../src/audit/at.ts"
import { Auditor, AuditorLive } from "../../src/audit/auditor.ts"
import type { TableRow } from "../../src/audit/table-rows.ts"
import { Database } from "../../src/store/database.ts"
import type { StoredEvent } from "../../src/store/event-log.ts"
import { liveState } from "../../src/audit/at.ts"
import type { StoreKind } from "../support/database.ts"
import { eventually } from "../support/eventually.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

export const AUDIT_CONFIG = "./test/fixtures/audit/config.json"
const BLOG = "blog.example.com"
const NEWS = "news.example.com"

type State = Record<string, Array<TableRow>>

export const describeAuditContract = (kind: StoreKind) =>
  describe(`audit replay on ${kind}`, () => {
    let server: TestServer
    const audit = <A, E>(body: (auditor: Auditor["Service"]) => Effect.Effect<A, E>) =>
      Effect.runPromise(
        Effect.gen(function* () {
          return yield* body(yield* Auditor)
        }).pipe(
          Effect.provide(
            AuditorLive(AUDIT_CONFIG).pipe(
              Layer.provide(Layer.succeed(Database, { sql: server.sql, kind, url: undefined })),
            ),
          ),
        ),
      )
    const post = async (host: string, handler: string, body: unknown) => {
      const res = await server.call(host, `/api/${handler}`, { method: "POST", body: JSON.stringify(body) })
      expect(res.status).toBe(200)
      return await res.json()
    }
    const state = (host: string, point?: LogPoint) =>
      audit((auditor) =>
        Effect.gen(function* () {
          const tables: State = {}
          const sink = (table: string, rows: ReadonlyArray<TableRow>) => {
            ;(tables[table] ??= []).push(...rows)
          }
          if (point) yield* auditor.stateAt(host, point, sink)
          else yield* Effect.flatMap(auditor.project(host), (p) => liveState(server.sql, p, host, sink))
          return tables
        })
      )
    const headOf = async (host: string) =>
      Number((await server.sql`select max(seq)::int8 as seq from hamlet_events where host = ${host}`)[0].seq)

    let first: { id: string }
    beforeAll(async () => {
      server = await startTestServer({ store: kind, configPath: AUDIT_CONFIG })
      first = await post(BLOG, "SubmitItem", { title: "one", tags: ["x", "y"] })
      const second = await post(BLOG, "SubmitItem", { title: "two", tags: ["x"] })
      await post(BLOG, "SubmitComment", { itemId: first.id, text: "hi", author: "ann" })
      await post(BLOG, "DeleteItem", { id: second.id })
      await post(NEWS, "SubmitItem", { title: "news", tags: ["x"] })
    })
    afterAll(() => server?.close())

    it("verify passes on an untouched host", async () => {
      const report = await audit((a) => a.verify(BLOG))
      expect(report.chain).toMatchObject({ events: 4, firstSeq: 1, lastSeq: 4, breaks: [] })
      expect(report.projections?.drifts).toEqual([])
      expect(report.replayed.events).toBe(4)
    })

    it("lists a host's events in seq order, narrowed by seq and stream", async () => {
      const collect = (range: Parameters<Auditor["Service"]["events"]>[1]) =>
        audit((a) =>
          Effect.promise(async () => {
            const out: Array<StoredEvent> = []
            for await (const batch of a.events(BLOG, range)) out.push(...batch)
            return out
          })
        )
      expect((await collect({})).map((e) => e.seq)).toEqual([1, 2, 3, 4])
      expect((await collect({ fromSeq: 2, toSeq: 3 })).map((e) => e.seq)).toEqual([2, 3])
      const stream = await collect({ stream: `item-${first.id}` })
      expect(stream.map((e) => [e.seq, e.version, e.type])).toEqual([[1, 1, "ItemSubmitted"], [
        3,
        2,
        "CommentSubmitted",
      ]])
    })

    it("verify finds an event whose data was changed in SQL, by its seq", async () => {
      const [original] = await server.sql`select data from hamlet_events where host = ${BLOG} and seq = 2`
      await server.sql`update hamlet_events set data = jsonb_set(data, '{title}', '"forged"')
        where host = ${BLOG} and seq = 2`
      try {
        const report = await audit((a) => a.verify(BLOG))
        expect(report.chain.breaks.map((b) => [b.seq, b.kind])).toEqual([[2, "tampered"]])
        // the forged title also shows as drift: the live table still holds the real one
        expect(report.projections?.drifts).toContainEqual(
          expect.objectContaining({
            table: "horatio.microblog_item",
            column: "title",
            live: "two",
            rebuilt: "forged",
          }),
        )
        const repair = await audit((a) => a.repair(BLOG))
        expect(repair.tables).toEqual([]) // a broken log is never projected into live tables
      } finally {
        await server.sql`update hamlet_events set data = ${server.sql.json(original.data)}
          where host = ${BLOG} and seq = 2`
      }
      expect((await audit((a) => a.verify(BLOG))).chain.breaks).toEqual([])
    })

    it("verify reports data tampered beyond what the projections can replay, instead of failing", async () => {
      const [original] = await server.sql`select data from hamlet_events where host = ${BLOG} and seq = 2`
      await server.sql`update hamlet_events set data = 'null'::jsonb where host = ${BLOG} and seq = 2`
      try {
        const report = await audit((a) => a.verify(BLOG))
        expect(report.chain.breaks.map((b) => [b.seq, b.kind])).toEqual([[2, "tampered"]])
        expect(report.projections).toBeUndefined()
        expect(report.replayError).toMatch(/seq 2\b/)
      } finally {
        await server.sql`update hamlet_events set data = ${server.sql.json(original.data)}
          where host = ${BLOG} and seq = 2`
      }
    })

    it("verify finds a deleted event, by its seq", async () => {
      const [row] = await server.sql`delete from hamlet_events where host = ${BLOG} and seq = 3 returning *`
      try {
        const report = await audit((a) => a.verify(BLOG))
        expect(report.chain.breaks[0]).toMatchObject({ seq: 3, kind: "missing" })
      } finally {
        await server.sql`insert into hamlet_events ${server.sql(row)}`
      }
      expect((await audit((a) => a.verify(BLOG))).chain.breaks).toEqual([])
    })

    it("verify and rebuild find the first events of the log deleted, from seq 1", async () => {
      const rows = await server.sql`delete from hamlet_events where host = ${BLOG} and seq <= 2 returning *`
      try {
        const report = await audit((a) => a.verify(BLOG, { chainOnly: true }))
        // the live log starts at seq 1 on the genesis hash: nothing there to anchor on
        expect(report.chain).toMatchObject({ firstSeq: 3, anchoredAt: undefined })
        expect(report.chain.breaks.map((b) => [b.seq, b.kind, b.message])).toEqual([
          [1, "missing", "seq 1..2 are missing (deleted events?)"],
        ])
        const repair = await audit((a) => a.repair(BLOG))
        expect(repair.chain.breaks[0]).toMatchObject({ seq: 1, kind: "missing" })
        expect(repair.tables).toEqual([]) // refused: a broken log is never projected
      } finally {
        for (const row of rows) await server.sql`insert into hamlet_events ${server.sql(row)}`
      }
      expect((await audit((a) => a.verify(BLOG))).chain.breaks).toEqual([])
    })

    it(
      "verify reports an event moved to a forged seq far past the head, without paging up to it",
      async () => {
        const forged = 900_000_000_000_000
        await server.sql`update hamlet_events set seq = ${forged} where host = ${BLOG} and seq = 3`
        try {
          const report = await audit((a) => a.verify(BLOG))
          expect(report.chain.breaks[0]).toMatchObject({ seq: 3 })
          expect(report.chain.lastSeq).toBe(forged)
        } finally {
          await server.sql`update hamlet_events set seq = 3 where host = ${BLOG} and seq = ${forged}`
        }
        expect((await audit((a) => a.verify(BLOG))).chain.breaks).toEqual([])
      },
      20_000,
    )

    it("reports a hand-edited row as drift and rebuild repairs that host only", async () => {
      await server.sql`update horatio.microblog_item set title = 'edited', comment_count = 7
        where host = ${BLOG} and id = ${first.id}`
      await server.sql`delete from horatio.item_tag where host = ${BLOG} and id = ${`${first.id}:y`}`
      await server.sql`update horatio.tag set item_count = 40 where host = ${NEWS} and id = 'x'`
      const newsBefore = await state(NEWS)

      const report = await audit((a) => a.verify(BLOG))
      expect(report.chain.breaks).toEqual([])
      expect(report.projections?.drifts).toEqual(expect.arrayContaining([
        { table: "horatio.microblog_item", key: first.id, column: "title", live: "edited", rebuilt: "one" },
        { table: "horatio.microblog_item", key: first.id, column: "comment_count", live: 7, rebuilt: 1 },
        expect.objectContaining({
          table: "horatio.item_tag",
          key: `${first.id}:y`,
          column: "(row)",
          live: null,
        }),
      ]))
      expect(report.projections?.drifts).toHaveLength(3)

      const repair = await audit((a) => a.repair(BLOG))
      expect(repair.repaired.drifts).toHaveLength(3)
      expect([...repair.tables].sort()).toEqual(["horatio.item_tag", "horatio.microblog_item"])
      expect((await audit((a) => a.verify(BLOG))).projections?.drifts).toEqual([])
      // the other host's rows (drift included) were not touched
      expect(await state(NEWS)).toEqual(newsBefore)
      const news = await audit((a) => a.verify(NEWS))
      expect(news.projections?.drifts).toEqual([
        { table: "horatio.tag", key: "x", column: "item_count", live: 40, rebuilt: 1 },
      ])
      await audit((a) => a.repair(NEWS))
    })

    it("rebuild keeps the data in a column no model field uses any more, on every row it repairs", async () => {
      // a field removed from the model keeps its column and data (README): the repair must too
      await server.sql`alter table horatio.tag add column legacy text`
      try {
        await server.sql`update horatio.tag set legacy = 'keep-me'`
        await server.sql`update horatio.tag set item_count = item_count + 1000 where host = ${BLOG}`
        await server
          .sql`insert into horatio.tag (host, id, item_count, legacy) values (${BLOG}, 'ghost', 1, 'x')`
        const before = await server.sql`select id from horatio.tag where host = ${BLOG} and id <> 'ghost'`

        const repair = await audit((a) => a.repair(BLOG))
        expect(repair.tables).toEqual(["horatio.tag"])
        const rows = await server.sql`select id, legacy from horatio.tag where host = ${BLOG} order by id`
        expect(rows.map((r) => r.id)).toEqual(before.map((r) => r.id).sort())
        expect(rows.map((r) => r.legacy)).toEqual(rows.map(() => "keep-me"))
        expect((await audit((a) => a.verify(BLOG))).projections?.drifts).toEqual([])
        const news = await server.sql`select legacy from horatio.tag where host = ${NEWS}`
        expect(news.map((r) => r.legacy)).toEqual(news.map(() => "keep-me"))
      } finally {
        await server.sql`alter table horatio.tag drop column legacy`
      }
    })

    it("--at a seq or a time reproduces the read tables as they were then", async () => {
      const seq = await headOf(BLOG)
      const snapshot = await state(BLOG)
      const takenAt = new Date()
      // the next events must be recorded after `takenAt` (ms clock): wait for the tick
      await Effect.runPromise(eventually("the clock to tick", () => Date.now() > takenAt.getTime()))
      await post(BLOG, "SubmitComment", { itemId: first.id, text: "later", author: "bob" })
      await post(BLOG, "SubmitItem", { title: "three", tags: ["y"] })
      await post(BLOG, "DeleteItem", { id: first.id })
      expect(await state(BLOG)).not.toEqual(snapshot)
      expect(await state(BLOG, { seq })).toEqual(snapshot)
      expect(await state(BLOG, { time: takenAt })).toEqual(snapshot)
      expect(await state(BLOG, { seq: await headOf(BLOG) })).toEqual(await state(BLOG))
      expect(await state(BLOG, { time: new Date(0) })).toEqual({})
    })
  })
