/**
 * Read lanes: host reads pipelined on shared connections. The statements sent to a lane in
 * one turn of the event loop — of any host, any read batch — go out back to back as one
 * read-only transaction: `begin read only` with the tenant role, then each statement behind
 * the `hamlet.host` it reads (bound again whenever the host changes), then `commit`. So a
 * node's reads share a connection's pipeline (one socket write carries many) instead of each
 * batch reserving a connection for two round trips, and a turn's statements cost one begin and
 * one commit. At read committed, Postgres' default, every statement took its own snapshot
 * anyway: a handler's reads see what they saw in a transaction of their own. A statement that
 * fails aborts its transaction: the ones behind it are sent again, in a transaction of their
 * own, and only it fails.
 *
 * A lane is a reserved connection, held only while it has statements in flight. The next
 * statement goes to the least busy lane that is taking statements; another lane is reserved
 * (up to `MAX_LANES`) when every lane is busy or stalled behind a slow statement, so one
 * tenant's slow query holds up only what was already queued behind it. A lane takes new
 * statements for `LANE_TURN_MS` at most, then is released once drained: writers waiting for
 * a connection (embedded PGlite has only one) get their turn.
 *
 * One tenant cannot take every lane: a host whose slow statements already stall `MAX_HOST_LANES`
 * lanes queues its next statements behind its own, leaving the other lanes to other hosts. And no
 * read runs for ever: each statement has a `statement_timeout` (its caller's, or the lanes'
 * default), so Postgres cancels a runaway read (SQLSTATE 57014, `READ_TIMED_OUT`) and its lane
 * moves on — a handler's own time limit answers its caller but cannot stop its SQL.
 *
 * Measured (real services, 32 clients, wrk, 3 alternating runs against a reserved
 * transaction per read batch): one host's GetFeed 5,290 → 5,970 rps; the 90/10 mix over
 * 100 hosts 2,190 → 2,740 rps (bench --only scale, 2 runs each). A transaction per turn rather
 * than per statement: embedded PGlite (every statement on one thread), GetItem over 50 ids at
 * 256 clients 1,725 → 5,144 rps; the mix over 100 hosts on Postgres 2,790 → 2,960.
 */
import { IN_FAILED_TRANSACTION, isConnectionLost, type Sql } from "./database.ts"
import { reserveConnection, type ReservedConnection } from "./reserved-connection.ts"
import { normalisedHost, TENANT_ROLE } from "./roles.ts"

/** Connections reads may hold at once. */
const MAX_LANES = 4
/** Lanes one host's stalled statements may hold at once: half, so one noisy tenant leaves the rest. */
const MAX_HOST_LANES = 2
/**
 * A read's time limit when its caller gives none. Reads on lanes are handler reads, and a handler's
 * time limit (the project's `handlerTimeoutMs`, 5 s by default, or the handler's own) is not known
 * here: 30 s stays above any usual handler limit, so no read a handler could still use is cancelled,
 * while a runaway read frees its lane within that bound.
 */
export const DEFAULT_READ_TIMEOUT_MS = 30_000
/** The SQLSTATE of a read cancelled by its `statement_timeout` (query_canceled). */
export const READ_TIMED_OUT = "57014"
/** Statements in flight on a lane before another lane is worth reserving. */
const BUSY_LANE = 16
/** A lane whose oldest statement has run this long takes no more (another lane does). */
const STALLED_LANE_MS = 20
/** How long a lane takes new statements before it drains and goes back to the pool. */
const LANE_TURN_MS = 20

type Row = Record<string, unknown>

/** A statement in flight on a lane: when it was queued, and whose. */
interface InFlight {
  readonly at: number
  readonly host: string
}

interface Lane {
  readonly reserved: ReservedConnection
  readonly reservedAt: number
  /** The statements in flight, oldest first (a connection answers in order). */
  readonly started: Array<InFlight>
  /** Set when its connection failed or its turn ended: it takes no more and is released once drained. */
  isRetired: boolean
  /** Statements of this turn, sent together when it ends. */
  readonly queued: Array<Statement>
  /** Statements sent and not yet answered. */
  readonly unanswered: Set<Statement>
  /** Its connection was lost: postgres.js has it back; it is neither used nor released again. */
  isLost: boolean
}

export interface ReadOptions {
  /**
   * Postgres cancels the statement after this long (it fails with `READ_TIMED_OUT`); the lanes'
   * default when absent. Pass what is left of the handler's time limit.
   */
  readonly timeoutMs?: number
}

export interface ReadLanes {
  /** Runs one statement in a read-only transaction, reading `host`'s rows. */
  readonly run: (
    host: string,
    text: string,
    params: ReadonlyArray<unknown>,
    options?: ReadOptions,
  ) => Promise<Array<Row>>
}

export interface ReadLanesOptions {
  /** A read's `statement_timeout` when its caller gives none (`DEFAULT_READ_TIMEOUT_MS`). */
  readonly statementTimeoutMs?: number
}

/**
 * Opens a lane's read transaction. enable_sort off: a table that just grew has no statistics,
 * and the planner would sort a host's every row for a `limit 50` feed (measured: 2,800 → 140
 * rps); an index giving the order wins. plan_cache_mode auto (Postgres' default; the connection
 * forces custom plans for the partitioned event log): reads touch only model tables, which are
 * not partitioned, and a generic plan spares planning each statement — a fifth of Postgres'
 * time here (measured: 90/10 mix over 100 hosts 2,690 → 2,930 rps).
 */
const beginRead = (timeoutMs: number) =>
  `begin read only; set local role ${TENANT_ROLE}; set local enable_sort = off; set local plan_cache_mode = auto; ` +
  `set local statement_timeout = ${timeoutMs}`
/**
 * Binds the host the next statements read ($1) and their time limit ($2, ms), for the rest of the
 * transaction. Postgres times each statement of the pipeline from its own start, so one statement's
 * limit is not eaten by the ones ahead of it (checked: three 0.6 s reads in one transaction under a
 * 1 s limit all answer).
 */
const BIND_HOST = "select set_config('hamlet.host', $1, true), set_config('statement_timeout', $2, true)"

/** A statement waiting for its lane's next transaction. */
interface Statement {
  readonly host: string
  readonly text: string
  readonly params: ReadonlyArray<unknown>
  /** Its statement_timeout, ms. */
  readonly timeoutMs: number
  /** Sent again after the statement ahead of it failed its transaction. */
  readonly isRetry: boolean
  readonly done: PromiseWithResolvers<Array<Row>>
}

/**
 * Refuses parameters postgres.js could not serialise. It serialises a prepared statement's
 * parameters while writing it, behind statements already in flight, and a throw there rejects
 * the statement in flight instead and leaves the connection's replies out of step: with other
 * tenants' statements on the lane, a later one could be answered with another's rows.
 * (model-access.ts checks values against their columns' types; this is the backstop.)
 */
const checkParams = (params: ReadonlyArray<unknown>) => {
  for (const value of params) {
    if (typeof value === "symbol" || typeof value === "function" || typeof value === "bigint") {
      throw new TypeError(`a ${typeof value} cannot be a statement parameter`)
    }
    if (value instanceof Date && Number.isNaN(value.getTime())) {
      throw new RangeError("an invalid Date parameter")
    }
  }
}

/** One call's promise, also when the call throws instead of rejecting. */
const settle = <A>(call: () => Promise<A>): Promise<A> => {
  try {
    return call()
  } catch (error) {
    return Promise.reject(error)
  }
}

/** A time limit Postgres takes: whole ms, at least 1 (0 would mean none). */
const _timeoutMs = (ms: number | undefined, fallback: number): number =>
  ms === undefined || !Number.isFinite(ms) ? fallback : Math.max(1, Math.ceil(ms))

export const makeReadLanes = (sql: Sql, options: ReadLanesOptions = {}): ReadLanes => {
  const defaultTimeoutMs = _timeoutMs(options.statementTimeoutMs, DEFAULT_READ_TIMEOUT_MS)
  const BEGIN_READ = beginRead(defaultTimeoutMs)
  const lanes: Array<Lane> = []
  let reserving: Promise<Lane> | undefined

  const isTaking = (lane: Lane, now: number): boolean => {
    if (lane.isRetired) return false
    if (now - lane.reservedAt > LANE_TURN_MS) {
      lane.isRetired = true
      if (lane.started.length === 0) release(lane)
      return false
    }
    return lane.started.length === 0 || now - lane.started[0].at < STALLED_LANE_MS
  }

  /** Whether the statement holding up `lane` is `host`'s, and has run long enough to stall it. */
  const isStalledBy = (lane: Lane, host: string, now: number): boolean =>
    lane.started.length > 0 && lane.started[0].host === host && now - lane.started[0].at >= STALLED_LANE_MS

  const release = (lane: Lane) => {
    const at = lanes.indexOf(lane)
    if (at < 0) return
    lanes.splice(at, 1)
    if (!lane.isLost) lane.reserved.release()
  }

  /**
   * The lane's connection is gone: seen on the first statement it failed (before any other turn
   * can pick the lane). Whatever was sent on it, or waits in postgres.js' queue for it, is
   * answered now: postgres.js never answers what it had not sent.
   */
  const lose = (lane: Lane, error: unknown) => {
    if (lane.isLost) return
    lane.isLost = lane.isRetired = true
    release(lane)
    for (const statement of lane.unanswered) statement.done.reject(error)
    lane.unanswered.clear()
  }

  const reserve = (): Promise<Lane> => {
    reserving ??= reserveConnection(sql).then(
      (reserved) => {
        reserving = undefined
        const lane: Lane = {
          reserved,
          reservedAt: performance.now(),
          started: [],
          isRetired: false,
          queued: [],
          unanswered: new Set(),
          isLost: false,
        }
        lanes.push(lane)
        // closed between statements too (nothing in flight to fail): never sent on again
        reserved.onLost((error) => lose(lane, error))
        return lane
      },
      (error) => {
        reserving = undefined
        throw error
      },
    )
    return reserving
  }

  const fewestWaiting = (among: ReadonlyArray<Lane>): Lane =>
    among.reduce((a, b) => (b.started.length < a.started.length ? b : a))

  const pick = (host: string): Lane | Promise<Lane> => {
    const now = performance.now()
    // a host already stalling its share of lanes waits behind its own slow statements, never
    // reserving (or stalling) another: the remaining lanes stay free for other hosts
    const held = lanes.filter((lane) => isStalledBy(lane, host, now))
    if (held.length >= MAX_HOST_LANES) return fewestWaiting(held)
    let best: Lane | undefined
    for (const lane of [...lanes]) {
      if (isTaking(lane, now) && (!best || lane.started.length < best.started.length)) best = lane
    }
    if (best && best.started.length < BUSY_LANE) return best
    // lanes still draining count too: reads never hold more than MAX_LANES connections
    if (lanes.length < MAX_LANES) return reserve()
    // every lane busy, stalled or past its turn: queue where the fewest wait
    return best ?? fewestWaiting(lanes)
  }

  /** Sends `group` on `lane` as one transaction; each statement settles on its own. */
  const send = (lane: Lane, group: ReadonlyArray<Statement>) => {
    if (lane.isLost) {
      lane.started.splice(0, group.length)
      for (const statement of group) submit(statement) // to a lane with a connection
      return
    }
    const conn = lane.reserved.sql
    // written in this turn, back to back: nothing else between them; whatever happens, `commit`
    // follows, so the connection never stays inside the transaction
    let isBegun = false
    const begun = settle(() => {
      const sent = conn.unsafe(BEGIN_READ).simple().execute()
      isBegun = true
      return sent
    })
    let bound: string | undefined
    let boundTimeoutMs: number | undefined
    const outcomes = group.map((statement) => {
      // never outside the tenant's read-only transaction, never under another host
      if (!isBegun) return Promise.reject(new Error("the read transaction could not begin"))
      const binding = statement.host === bound && statement.timeoutMs === boundTimeoutMs
        ? undefined
        : settle(() =>
          conn.unsafe(BIND_HOST, [statement.host, String(statement.timeoutMs)], { prepare: true }).execute()
        )
      bound = statement.host
      boundTimeoutMs = statement.timeoutMs
      const rows = settle(() =>
        // deno-lint-ignore no-explicit-any -- postgres.js types parameters as its own serializable union
        conn.unsafe<Array<Row>>(statement.text, statement.params as any, { prepare: true }).execute()
      )
      if (!binding) return rows
      return binding.then(() => rows, (error) => {
        rows.catch(() => {}) // it failed behind the binding: the binding's error is the one to report
        throw error
      })
    })
    const ended = isBegun ? settle(() => conn.unsafe("commit").execute()) : Promise.resolve()
    // a failed begin explains its statements' failure ("current transaction is aborted"); it is
    // answered first (the connection answers in order), so they are not sent again
    let hasBeginFailed = false
    begun.catch((error) => {
      hasBeginFailed = true
      if (isConnectionLost(error)) lose(lane, error)
      for (const statement of group) statement.done.reject(error)
    })
    for (const statement of group) lane.unanswered.add(statement)
    group.forEach((statement, i) =>
      outcomes[i].then(
        (rows) => {
          lane.unanswered.delete(statement)
          statement.done.resolve(rows as Array<Row>)
        },
        (error) => {
          lane.unanswered.delete(statement)
          if (isConnectionLost(error)) {
            lose(lane, error)
            return statement.done.reject(error)
          }
          // behind a statement that failed: it never ran, so it runs again in a transaction of its own
          if (
            (error as { code?: string })?.code === IN_FAILED_TRANSACTION && !statement.isRetry &&
            !hasBeginFailed
          ) {
            return submit({ ...statement, isRetry: true })
          }
          statement.done.reject(error)
        },
      )
    )
    ended.catch((error) => isConnectionLost(error) && lose(lane, error))
    void Promise.allSettled([begun, ...outcomes, ended]).then(() => {
      lane.started.splice(0, group.length)
      // drained: back to the pool (the next read reserves again, behind any writer waiting)
      if (lane.started.length === 0 && lane.queued.length === 0) release(lane)
    })
  }

  /** Queues `statement` on a lane; the lane sends what it has once this turn ends. */
  const enqueue = (lane: Lane, statement: Statement) => {
    lane.started.push({ at: performance.now(), host: statement.host })
    lane.queued.push(statement)
    if (lane.queued.length === 1) queueMicrotask(() => send(lane, lane.queued.splice(0)))
  }

  /** A first try joins the lane's turn; a statement sent again goes alone (nothing can fail ahead of it). */
  const submit = (statement: Statement): void => {
    const place = (lane: Lane) => {
      if (!statement.isRetry) return enqueue(lane, statement)
      lane.started.push({ at: performance.now(), host: statement.host })
      send(lane, [statement])
    }
    const lane = pick(statement.host)
    if (lane instanceof Promise) lane.then(place, (error) => statement.done.reject(error))
    else place(lane)
  }

  return {
    run: (host, text, params, options) =>
      settle(() => {
        normalisedHost(host) // throws for an unnormalised host, before any lane is taken
        checkParams(params)
        const done = Promise.withResolvers<Array<Row>>()
        const timeoutMs = _timeoutMs(options?.timeoutMs, defaultTimeoutMs)
        submit({ host, text, params, timeoutMs, isRetry: false, done })
        return done.promise
      }),
  }
}
