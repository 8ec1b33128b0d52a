/**
 * guardReachability (src/store/reachability.ts) on a stand-in pool whose reservations the test
 * settles by hand: while Postgres is unreachable it refuses at once, and a late refusal of
 * something sent before Postgres answered again does not shut the way once more.
 */
import type postgres from "postgres"
import { describe, expect, it } from "vitest"
import { guardReachability, STORE_UNREACHABLE } from "../../src/store/reachability.ts"

const refused = () => Object.assign(new Error("Connection refused (os error 111)"), { code: "ECONNREFUSED" })

/** A pool of `max` connections whose every `reserve()` waits until the test settles it. */
const handPool = (max = 1) => {
  const pending: Array<{ resolve: (conn: unknown) => void; reject: (error: Error) => void }> = []
  const pool = Object.assign(() => {
    throw new Error("no statements here")
  }, {
    options: { max },
    reserve: () => new Promise((resolve, reject) => pending.push({ resolve, reject })),
  })
  return { pool: pool as unknown as postgres.Sql, pending }
}

/** What a reservation came to: "served", the error's code, or "waiting". */
const outcome = async (reservation: Promise<unknown>): Promise<string> => {
  const settled = await Promise.race([
    reservation.then(() => "served", (error: { code?: string }) => error.code ?? "error"),
    new Promise<string>((resolve) => setTimeout(() => resolve("waiting"), 10)),
  ])
  return settled
}

/** A guarded hand pool that has just seen Postgres refuse a connect: it is down. */
const downed = async (max = 1, probeMs = 60_000, stuckMs?: number) => {
  const { pool, pending } = handPool(max)
  const sql = guardReachability(pool, probeMs, stuckMs)
  const first = sql.reserve()
  pending[0].reject(refused())
  expect(await outcome(first)).toBe("ECONNREFUSED")
  return { sql, pending }
}

describe("guardReachability", () => {
  it("refuses at once while Postgres is unreachable; sends again once it answers", async () => {
    const { sql, pending } = await downed()
    expect(await outcome(sql.reserve())).toBe(STORE_UNREACHABLE)
    expect(pending).toHaveLength(1)
  })

  it("a refusal of a reservation sent before the latest answer leaves the way open", async () => {
    const { pool, pending } = handPool()
    const sql = guardReachability(pool, 60_000)
    const early = sql.reserve()
    const answered = sql.reserve()
    pending[1].resolve({})
    expect(await outcome(answered)).toBe("served")
    // its connect was tried before Postgres answered: old news
    pending[0].reject(refused())
    expect(await outcome(early)).toBe("ECONNREFUSED")
    const next = sql.reserve()
    expect(pending).toHaveLength(3)
    pending[2].resolve({})
    expect(await outcome(next)).toBe("served")
    // one sent after the answer that is refused is news: the way shuts
    const late = sql.reserve()
    pending[3].reject(refused())
    expect(await outcome(late)).toBe("ECONNREFUSED")
    expect(await outcome(sql.reserve())).toBe(STORE_UNREACHABLE)
  })

  it("while down, lets one probe out at a time: the next waits for it to be answered", async () => {
    const { sql, pending } = await downed(1, 0)
    const probe = sql.reserve()
    expect(pending).toHaveLength(2)
    // its connect is still waiting: another would only queue behind it
    expect(await outcome(sql.reserve())).toBe(STORE_UNREACHABLE)
    expect(pending).toHaveLength(2)
    pending[1].reject(refused())
    expect(await outcome(probe)).toBe("ECONNREFUSED")
    const next = sql.reserve()
    expect(pending).toHaveLength(3)
    pending[2].resolve({})
    expect(await outcome(next)).toBe("served")
    const back = [sql.reserve(), sql.reserve()]
    expect(pending).toHaveLength(5)
    pending[3].resolve({})
    pending[4].resolve({})
    expect(await Promise.all(back.map(outcome))).toEqual(["served", "served"])
  })

  it("a probe unanswered past its time lets another go, up to one per connection of the pool", async () => {
    // every probe counts as unanswered at once
    const { sql, pending } = await downed(2, 0, 0)
    const probes = [sql.reserve(), sql.reserve()]
    expect(pending).toHaveLength(3)
    // both connections are taken by probes: a third would queue behind them
    expect(await outcome(sql.reserve())).toBe(STORE_UNREACHABLE)
    expect(pending).toHaveLength(3)
    pending[1].reject(refused())
    expect(await outcome(probes[0])).toBe("ECONNREFUSED")
    const next = sql.reserve()
    expect(pending).toHaveLength(4)
    pending[2].resolve({})
    pending[3].resolve({})
    expect(await Promise.all([probes[1], next].map(outcome))).toEqual(["served", "served"])
  })
})
