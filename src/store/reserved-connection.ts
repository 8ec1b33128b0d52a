/**
 * A reserved postgres.js connection that knows when it was lost. postgres.js takes a connection
 * back when its socket closes (a terminated backend, a restarted server, a cut network) — also
 * while it sits idle inside a transaction, with nothing in flight to fail — and then a query sent
 * on the old handle crashes the process (a write to its null socket in a timer), or, once the
 * pool has reconnected it for another caller, runs in that caller's session. So every statement
 * sent through `sql` is checked first: once the connection is lost it is refused with a
 * CONNECTION_CLOSED error, never sent, and `release` does nothing.
 *
 * The connection is known from the reservation on: an opening statement (the caller's `begin`, or
 * an empty one) is written in the turn the reservation resolved, before any close can be
 * delivered (pg-socket.ts delivers a close in a later turn), and tells which connection this is.
 */
import type postgres from "postgres"
import type { Sql } from "./database.ts"
import {
  connectionClosed,
  guardStatements,
  onSettled,
  type PgConnection,
  type PgQuery,
} from "./pg-statements.ts"

export interface ReservedConnection {
  /** The connection's handle; statements sent after it was lost fail instead of going out. */
  readonly sql: postgres.ReservedSql
  /**
   * The opening statement's outcome (already observed: never an unhandled rejection). Statements
   * sent on `sql` queue behind it; a failed `begin` fails the ones behind it too.
   */
  readonly opened: Promise<unknown>
  /** Whether postgres.js has taken the connection back (it closed). */
  readonly isLost: () => boolean
  /** Called once, when the connection is lost (also while idle); replaces any earlier callback. */
  readonly onLost: (callback: (error: Error) => void) => void
  /** Back to the pool — unless lost: postgres.js has it back, and releasing it would hand it out twice. */
  readonly release: () => void
  /**
   * Closes the connection instead of releasing it (its state is unknown: a statement never
   * answered); the pool opens it afresh for its next user. It counts as lost from then on.
   */
  readonly terminate: () => void
  /**
   * Sends `statement` (a rollback) and releases the connection once it is answered; one that fails,
   * or is not answered within `timeoutMs` (a stalled store, a cut network whose socket has not
   * closed), is terminated instead, so its holder never waits on it for ever. Never rejects.
   */
  readonly finish: (statement: string, timeoutMs?: number) => Promise<void>
}

/** How long a reserved connection's finish (a rollback) may take before the connection is closed instead. */
const FINISH_TIMEOUT_MS = 3_000

/** The error a statement refused on a lost connection fails with. */
const reservedLost = (): Error => connectionClosed("the reserved connection was lost")

/**
 * Reserves a connection and sends `opening` on it at once (a simple-protocol statement, e.g. the
 * transaction's `begin`; empty by default, which Postgres answers without doing anything).
 */
export const reserveConnection = async (pool: Sql, opening = ""): Promise<ReservedConnection> => {
  const conn = await pool.reserve()
  // postgres.js hands a query's connection to the query's `onexecute` as it writes it: the opening
  // statement tells which connection this is, and its close hook reports a close at once
  let connection: PgConnection | undefined
  let lostWith: Error | undefined
  let onLost: (error: Error) => void = () => {}
  let isReleased = false
  /** Statements handed to postgres.js and not settled: the reservation's own queue is never answered on close. */
  const pending = new Set<PgQuery>()

  const lose = (error: Error) => {
    if (lostWith || isReleased) return
    lostWith = error
    for (const query of [...pending]) query.reject(error)
    pending.clear()
    onLost(error)
  }
  const isLost = () => {
    // the hook is the signal; a reservation cleared under us (by postgres.js' close) says the same
    if (!lostWith && !isReleased && connection && !connection.reserved) lose(reservedLost())
    return lostWith !== undefined
  }
  const learn = (c: PgConnection): boolean => {
    if (!connection) {
      connection = c
      c.onclose = (error) => lose(error ?? reservedLost())
      isLost() // taken back before it was learned (a close delivered in the same turn): lost from here on
    }
    return true // postgres.js reads this as "the connection takes more statements"
  }

  /**
   * Sends `query` unless the connection is lost or given back; settles it when postgres.js does, or
   * when it is lost. Once released, the connection is another holder's (another host's transaction,
   * say): a statement from a handle kept past its transaction is refused, never run there.
   */
  const send = (query: PgQuery, write: (query: PgQuery) => void) => {
    if (isReleased && !lostWith) return query.reject(connectionClosed("the reservation was released"))
    if (isLost()) return query.reject(lostWith)
    if (!connection) query.options.onexecute = learn
    pending.add(query)
    onSettled(query, () => pending.delete(query))
    write(query)
  }

  const sql = guardStatements(conn, send)

  // written now, not a turn later: `execute` would send it after an `await` inside postgres.js,
  // by when a close could have been delivered without this reservation knowing its connection
  const first = conn.unsafe(opening).simple() as unknown as PgQuery & Promise<unknown>
  ;(first as unknown as { executed: boolean }).executed = true
  send(first, first.handler)
  const opened = Promise.resolve(first)
  opened.catch(() => {}) // the caller observes it if it cares (a failed begin fails what follows anyway)

  const release = () => {
    if (isReleased || isLost()) return
    isReleased = true
    if (connection) connection.onclose = null
    conn.release()
  }
  const terminate = () => {
    if (isReleased || isLost()) return
    isReleased = true
    // closed: a statement sent later is refused (the handle would write to a dead socket), and
    // those in flight fail now, also any postgres.js holds unsent (its close fails only the sent)
    lostWith = connectionClosed("the reserved connection was closed")
    for (const query of [...pending]) query.reject(lostWith)
    pending.clear()
    if (!connection) return conn.release() // nothing of ours ran on it
    connection.onclose = null
    connection.terminate()
  }
  return {
    sql,
    opened,
    isLost,
    onLost: (callback) => {
      onLost = callback
    },
    release,
    terminate,
    finish: async (statement, timeoutMs = FINISH_TIMEOUT_MS) => {
      if (isLost()) return // postgres.js has it back; a statement on it is refused anyway
      let timer: ReturnType<typeof setTimeout> | undefined
      const isAnswered = await Promise.race([
        sql.unsafe(statement).simple().then(() => true, () => false),
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs)),
      ])
      clearTimeout(timer)
      if (isAnswered) release()
      else terminate()
    },
  }
}
