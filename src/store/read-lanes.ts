/**
 * Read lanes: host reads pipelined on shared connections. Each read statement is its own
 * read-only host transaction — `begin read only` with the tenant role and `hamlet.host`
 * bound, the statement, `commit` — written back to back on a connection, so the statements of
 * every host and every read batch share a connection's pipeline (one socket write carries
 * many) instead of each batch reserving a connection for two round trips. At read committed,
 * Postgres' default, every statement of a transaction took its own snapshot anyway: a
 * handler's reads see what they saw when its statements shared one transaction.
 *
 * A lane is a reserved connection, held only while it has statements in flight. The next
 * statement goes to the least busy lane that is taking statements; another lane is reserved
 * (up to `MAX_LANES`) when every lane is busy or stalled behind a slow statement, so one
 * tenant's slow query holds up only what was already queued behind it. A lane takes new
 * statements for `LANE_TURN_MS` at most, then is released once drained: writers waiting for
 * a connection (embedded PGlite has only one) get their turn.
 *
 * Measured (real services, 32 clients, wrk, 3 alternating runs against a reserved
 * transaction per read batch): one host's GetFeed 5,290 → 5,970 rps; the 90/10 mix over
 * 100 hosts 2,190 → 2,740 rps (bench --only scale, 2 runs each).
 */
import type { ReservedSql } from "postgres"
import type { Sql } from "./database.ts"
import { enterHostSql } from "./roles.ts"

/** Connections reads may hold at once. */
const MAX_LANES = 4
/** Statements in flight on a lane before another lane is worth reserving. */
const BUSY_LANE = 16
/** A lane whose oldest statement has run this long takes no more (another lane does). */
const STALLED_LANE_MS = 20
/** How long a lane takes new statements before it drains and goes back to the pool. */
const LANE_TURN_MS = 20

type Row = Record<string, unknown>

interface Lane {
  readonly conn: ReservedSql
  readonly reservedAt: number
  /** Start times of the statements in flight, oldest first (a connection answers in order). */
  readonly started: Array<number>
  /** Set when its connection failed or its turn ended: it takes no more and is released once drained. */
  isRetired: boolean
}

export interface ReadLanes {
  /** Runs one statement in its own read-only transaction of `host`. */
  readonly run: (host: string, text: string, params: ReadonlyArray<unknown>) => Promise<Array<Row>>
}

/** What opens a host's read transaction (the sort ban: see `hostBegin`). */
const beginCache = new Map<string, string>()
const hostBegin = (host: string): string => {
  let text = beginCache.get(host)
  if (text === undefined) {
    // enable_sort off: a table that just grew has no statistics, and the planner would sort a
    // host's every row for a `limit 50` feed (measured: 2,800 → 140 rps); an index giving the order wins.
    // plan_cache_mode auto (Postgres' default; the connection forces custom plans for the partitioned
    // event log): reads touch only model tables, which are not partitioned, and a generic plan spares
    // planning each statement — a fifth of Postgres' time here (measured: 90/10 mix over 100 hosts
    // 2,690 → 2,930 rps)
    text = `begin read only; ${
      enterHostSql(host)
    }; set local enable_sort = off; set local plan_cache_mode = auto`
    if (beginCache.size > 10_000) beginCache.clear()
    beginCache.set(host, text)
  }
  return text
}

const isServerError = (error: unknown): boolean => (error as { name?: string })?.name === "PostgresError"

/** One call's promise, also when the call throws instead of rejecting. */
const settle = <A>(call: () => Promise<A>): Promise<A> => {
  try {
    return call()
  } catch (error) {
    return Promise.reject(error)
  }
}

export const makeReadLanes = (sql: Sql): ReadLanes => {
  const lanes: Array<Lane> = []
  let reserving: Promise<Lane> | undefined

  const isTaking = (lane: Lane, now: number): boolean => {
    if (lane.isRetired) return false
    if (now - lane.reservedAt > LANE_TURN_MS) {
      lane.isRetired = true
      if (lane.started.length === 0) release(lane)
      return false
    }
    return lane.started.length === 0 || now - lane.started[0] < STALLED_LANE_MS
  }

  const release = (lane: Lane) => {
    const at = lanes.indexOf(lane)
    if (at < 0) return
    lanes.splice(at, 1)
    lane.conn.release()
  }

  const reserve = (): Promise<Lane> => {
    reserving ??= sql.reserve().then(
      (conn) => {
        reserving = undefined
        const lane: Lane = { conn, reservedAt: performance.now(), started: [], isRetired: false }
        lanes.push(lane)
        return lane
      },
      (error) => {
        reserving = undefined
        throw error
      },
    )
    return reserving
  }

  const pick = (): Lane | Promise<Lane> => {
    const now = performance.now()
    let best: Lane | undefined
    for (const lane of [...lanes]) {
      if (isTaking(lane, now) && (!best || lane.started.length < best.started.length)) best = lane
    }
    if (best && best.started.length < BUSY_LANE) return best
    const taking = lanes.filter((lane) => !lane.isRetired)
    if (taking.length < MAX_LANES) return reserve()
    // every lane busy, or stalled: queue where the fewest wait
    return best ?? taking.reduce((a, b) => (b.started.length < a.started.length ? b : a))
  }

  const send = (lane: Lane, begin: string, text: string, params: ReadonlyArray<unknown>) => {
    lane.started.push(performance.now())
    const { conn } = lane
    // the three are written in this turn, back to back: nothing of another statement between
    // them; whatever happens to the statement, `commit` follows, so the connection never stays
    // inside the transaction
    let isBegun = false
    const begun = settle(() => {
      const sent = conn.unsafe(begin).simple().execute()
      isBegun = true
      return sent
    })
    // never outside the tenant's read-only transaction
    const rows = isBegun
      // deno-lint-ignore no-explicit-any -- postgres.js types parameters as its own serializable union
      ? settle(() => conn.unsafe<Array<Row>>(text, params as any, { prepare: true }).execute())
      : Promise.reject(new Error("the read transaction could not begin"))
    const ended = isBegun ? settle(() => conn.unsafe("commit").execute()) : Promise.resolve()
    return Promise.allSettled([begun, rows, ended]).then(([b, r, e]) => {
      lane.started.shift()
      const failed = [b, r, e].find((s) => s.status === "rejected")
      // a lost connection fails everything on it: reserve a fresh one for what comes next
      if (failed && !isServerError(failed.reason)) lane.isRetired = true
      // drained: back to the pool (the next read reserves again, behind any writer waiting)
      if (lane.started.length === 0) release(lane)
      // a failed begin explains the statement's failure ("current transaction is aborted")
      if (b.status === "rejected") throw b.reason
      if (r.status === "rejected") throw r.reason
      return r.value as Array<Row>
    })
  }

  return {
    run: (host, text, params) =>
      settle(() => {
        const begin = hostBegin(host) // throws for an unnormalised host, before any lane is taken
        const lane = pick()
        return lane instanceof Promise
          ? lane.then((l) => send(l, begin, text, params))
          : send(lane, begin, text, params)
      }),
  }
}
