/**
 * Chained command batches (src/actors/commit-chain.ts): under concurrent writes the next batch
 * starts while the one before it commits. Every write still lands exactly once, in one
 * gapless, verifiable log — when the batches share a hot row (the batch behind must not take
 * its lock first: that deadlocked), and when the batch ahead fails at its commit (the one
 * behind it was placed after a head that never was, and must run again).
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { decodeText, encodeJson } from "../../src/bus/envelope.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { actorCounters } from "../../src/actors/actor-metrics.ts"
import { verifyLog } from "../support/event-log.ts"
import { serveTempProject } from "../support/project-server.ts"
import { checkService } from "../support/services.ts"
import { notesProject } from "../support/temp-project.ts"

const HOST = "chain.batch.test"

// a given id starts a stream that may already exist: the batch fails at its commit
const spec = notesProject({
  name: "chainer",
  hosts: [HOST],
  declarations: `export const Tally = defineModel("tally", { id: Schema.String, n: Schema.Number })`,
  models: ["Tally"],
  projection:
    `(e, db) => Effect.andThen(db.insert(Note, e.data), db.incrementOrInsert(Tally, { id: "all", n: 1 }, "n"))`,
})

const hasPostgres = await checkService("postgres")

describe.each([
  { store: "pglite" as const, available: true },
  { store: "postgres" as const, available: hasPostgres },
])("chained command batches on $store", ({ store, available }) => {
  const running = serveTempProject(spec, { store, skip: !available })

  /** Writes arriving steadily (a few per millisecond), so batches keep starting while others commit. */
  const addNotes = async (bodies: ReadonlyArray<{ readonly id?: string; readonly text: string }>) => {
    const calls: Array<Promise<number>> = []
    for (const [i, body] of bodies.entries()) {
      calls.push(
        running.server.call(HOST, "/api/AddNote", { body: JSON.stringify(body) }).then((r) => r.status),
      )
      if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 1))
    }
    return await Promise.all(calls)
  }

  const tally = async () =>
    Number(
      (await running.server.sql`select n from chainer.tally where host = ${HOST} and id = 'all'`)[0]?.n ?? 0,
    )

  it.skipIf(!available)("commit every write once when the batches share a hot row", async () => {
    const chainedBefore = actorCounters.chainedBatches
    const before = await tally()
    const statuses = await addNotes(Array.from({ length: 300 }, (_, i) => ({ text: `n${i}` })))
    expect(statuses.filter((s) => s !== 200)).toEqual([])
    expect(await tally()).toBe(before + 300)
    expect(actorCounters.chainedBatches).toBeGreaterThan(chainedBefore)
    expect(await verifyLog(running.server.sql, HOST)).toMatchObject({ isGapless: true, brokenAt: undefined })
  }, 60_000)

  it.skipIf(!available)("stores each idempotency key once however many batches repeat it", async () => {
    const before = await tally()
    const calls = Array.from({ length: 60 }, (_, i) =>
      Effect.runPromise(
        running.server.bus.request(
          requestSubject("chainer", HOST, "AddNote"),
          encodeJson({
            id: `idem-${i}`,
            input: { text: `k${i % 10}` },
            meta: { idempotencyKey: `key-${i % 10}` },
          }),
          { timeoutMs: 30_000 },
        ),
      ).then((reply) => JSON.parse(decodeText(reply.data))))
    const replies = await Promise.all(calls)
    expect(replies.filter((r) => !r.ok)).toEqual([])
    expect(await tally()).toBe(before + 10)
    const stored = await running.server
      .sql`select key from hamlet_idempotency where host = ${HOST} and key like 'key-%'`
    expect(stored.map((r) => r.key).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `key-${i}`).sort())
  }, 60_000)

  it.skipIf(!available)("runs the batches behind a failed commit again, losing none", async () => {
    const chainedBefore = actorCounters.chainedBatches
    const rerunBefore = actorCounters.rerunBatches
    const before = await tally()
    // the same stream started 8 times among 240 writes: one wins, 7 conflict, at commit time
    const bodies = Array.from(
      { length: 240 },
      (_, i) => i % 30 === 7 ? { id: "dup", text: "dup" } : { text: `m${i}` },
    )
    const statuses = await addNotes(bodies)
    const dups = statuses.filter((_, i) => bodies[i].id === "dup")
    expect(dups.filter((s) => s === 200)).toHaveLength(1)
    expect(dups.filter((s) => s === 409)).toHaveLength(7)
    expect(statuses.filter((s, i) => bodies[i].id !== "dup" && s !== 200)).toEqual([])
    expect(await tally()).toBe(before + 233)
    const notes = await running.server.sql`select count(*)::int as n from chainer.note where host = ${HOST}`
    expect(notes[0].n).toBe(await tally())
    expect(actorCounters.chainedBatches).toBeGreaterThan(chainedBefore)
    expect(actorCounters.rerunBatches).toBeGreaterThan(rerunBefore) // the path this test is about was taken
    expect(await verifyLog(running.server.sql, HOST)).toMatchObject({ isGapless: true, brokenAt: undefined })
  }, 60_000)
})
