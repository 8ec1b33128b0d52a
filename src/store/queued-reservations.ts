/**
 * Reservations postgres.js would drop. A `reserve()` that finds no free connection waits in the
 * pool's queue; when a connection closes, postgres.js hands the head of that queue to the
 * connection's reconnect as its first statement, and a reservation handed over that way is
 * dropped: never resolved, never rejected (3.4.9: index.js `onclose`, connection.js
 * `ReadyForQuery`; porsager/postgres#1195), and its caller — a host's actor — waits for ever.
 * So every connection a statement ran on is watched: a reservation handed to its reconnect is
 * asked for again (it left the queue, and the reconnect serves the queue once open), and only
 * after a few such drops in a row does it fail, with CONNECTION_CLOSED, a lost connection its
 * caller already knows how to answer.
 */
import type postgres from "postgres"
import { connectionClosed, guardStatements, type PgConnection, type StatementGuard } from "./pg-statements.ts"

/** The part of postgres.js' internal connection watched here: its id and its reconnect. */
interface PgPoolConnection extends PgConnection {
  readonly id: number
  connect: (initial: unknown) => void
}

/** A reservation waiting in postgres.js' queue; `fail` gives up on it. */
interface Waiting {
  readonly fail: (error: Error) => void
}

/** Drops of one reservation tolerated before it fails: connections closing one after another. */
const MAX_ASKS = 5

/** What a dropped reservation's own promise is rejected with: the cue to ask again. */
const DROPPED = new Error("reservation dropped by a reconnect")

const reservationDropped = (): Error => connectionClosed("a connection closed while the reservation waited")

/** postgres.js queues a reservation as `{ reserve, reject }` beside its statements. */
const isReservation = (initial: unknown): initial is { reject: (error: Error) => void } =>
  typeof initial === "object" && initial !== null && "reserve" in initial

/**
 * The pool `sql`, whose reservations are asked for again instead of waiting for ever when
 * postgres.js drops them.
 *
 * A connection no statement of ours ran on yet cannot be watched (a fresh one closed while
 * postgres.js fetched its array types, or one reserved and never used): when one closes, the
 * oldest reservation waiting — the only one of ours that can have been at the head of the queue —
 * fails with CONNECTION_CLOSED. Should postgres.js serve it after all, the connection goes
 * straight back. (Asking again there, with the first request left standing, was tried: the
 * second reservation got a connection postgres.js had not finished opening.)
 */
export const guardQueuedReservations = (pool: postgres.Sql): postgres.Sql => {
  const options = pool.options
  const watched = new Set<number>()
  /** Oldest first: postgres.js queues reservations in the order they were asked for. */
  const waiting = new Set<Waiting>()
  /** The connection postgres.js is closing: its next `connect` call comes from its `onclose`. */
  let closing: number | undefined

  const watch = (connection: PgConnection) => {
    const c = connection as PgPoolConnection
    if (watched.has(c.id)) return
    watched.add(c.id)
    const connect = c.connect
    c.connect = (initial) => {
      const isReconnect = closing === c.id
      closing = undefined
      // the reconnect would drop it; it left the queue, so nothing else can resolve it later
      if (isReconnect && isReservation(initial)) initial.reject(DROPPED)
      connect(initial)
    }
  }

  const onclose = options.onclose
  options.onclose = (id) => {
    onclose?.(id)
    if (watched.has(id)) {
      closing = id // postgres.js calls this connection's `connect` next, in this same turn
      queueMicrotask(() => closing === id && (closing = undefined))
      return
    }
    const [oldest] = waiting
    if (!oldest) return
    // a turn later: a connect that failed rejects the reservation it was for with its own error
    // (refused, timed out) in this turn, before this close, and that error must win; one still
    // waiting then was dropped
    setTimeout(() => waiting.delete(oldest) && oldest.fail(reservationDropped()), 0)
  }

  /**
   * Whether every connection of the pool is watched (postgres.js makes `max` of them once, and
   * reconnects the same objects): then nothing is left to learn, and statements go as they are.
   */
  const isAllWatched = () => watched.size >= options.max

  /** Learns the connection a statement runs on; postgres.js reads `onexecute`'s answer as "takes more". */
  const learn: StatementGuard = (query, send) => {
    if (isAllWatched()) return send(query)
    const onexecute = query.options.onexecute
    query.options.onexecute = (connection) => {
      watch(connection)
      return onexecute ? onexecute(connection) : true
    }
    send(query)
  }

  const reserve = () =>
    new Promise<postgres.ReservedSql>((resolve, reject) => {
      let isSettled = false
      let asks = 0
      const ask = () => {
        // a close whose queue was empty leaves `closing` set until its microtask; a reserve made
        // before then (an actor resumed by that close's rejections) may be handed the same
        // connection to open, and must not be taken for a reconnect's drop
        closing = undefined
        if (++asks > MAX_ASKS) {
          isSettled = true
          return reject(reservationDropped())
        }
        const reservation: Waiting = {
          fail: (error) => {
            if (isSettled) return
            isSettled = true
            reject(error)
          },
        }
        waiting.add(reservation)
        pool.reserve().then((conn) => {
          waiting.delete(reservation)
          if (isSettled) return conn.release() // served by an earlier or later ask: nobody holds it
          isSettled = true
          resolve(isAllWatched() ? conn : guardStatements(conn, learn))
        }, (error) => {
          waiting.delete(reservation)
          if (isSettled) return
          if (error === DROPPED) return ask()
          isSettled = true
          reject(error)
        })
      }
      ask()
    })

  return guardStatements(pool, learn, { reserve })
}
