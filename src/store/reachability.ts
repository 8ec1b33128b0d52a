/**
 * Fails fast while Postgres cannot be reached. postgres.js keeps a statement queued until one of
 * its connections connects, retrying with back-off, so during an outage every request would wait
 * out its handler's time limit. Once a connect fails as unreachable (refused, timed out, no such
 * host), statements are refused at once with `STORE_UNREACHABLE` — except one every `probeMs`,
 * sent to try again: the first statement answered opens the way for all. A statement sent before
 * the latest answer that fails as unreachable afterwards (its connect was tried during the outage)
 * is old news and leaves the way open.
 */
import type postgres from "postgres"
import { guardStatements, onSettled, type StatementGuard } from "./pg-statements.ts"

/**
 * The code of a statement refused while Postgres is unreachable: a CONNECTION_ code, so the
 * store treats it as a lost connection (nothing ran; no connection to roll back or release).
 */
export const STORE_UNREACHABLE = "CONNECTION_UNREACHABLE"

/** How often a statement is let through to see whether Postgres is back. */
const PROBE_MS = 250

const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "CONNECT_TIMEOUT",
])

/** Whether `error` says no connection could be made (not that one was lost under a statement). */
export const isUnreachable = (error: unknown): boolean =>
  UNREACHABLE_CODES.has(String((error as { code?: unknown })?.code))

/** The pool `sql`, refusing statements and reservations while Postgres is unreachable. */
export const guardReachability = (pool: postgres.Sql, probeMs = PROBE_MS): postgres.Sql => {
  let downWith: Error | undefined
  let lastTry = 0
  /** Statements and reservations sent so far, and how many of them an answer came after. */
  let sent = 0
  let answeredAfter = 0

  const refusal = (): Error | undefined => {
    if (!downWith) return undefined
    const now = performance.now()
    if (now - lastTry >= probeMs) {
      lastTry = now // this one goes: its outcome says whether Postgres is back
      return undefined
    }
    return Object.assign(new Error(`Postgres is unreachable (${downWith.message}); refused without trying`), {
      code: STORE_UNREACHABLE,
    })
  }
  const observe = (attempt: number, error: unknown) => {
    if (!isUnreachable(error) || attempt <= answeredAfter) return
    downWith ??= error instanceof Error ? error : new Error(String(error))
    lastTry = performance.now()
  }
  const isBack = () => {
    downWith = undefined
    answeredAfter = sent
  }

  const guard: StatementGuard = (query, send) => {
    const refused = refusal()
    if (refused) return query.reject(refused)
    const attempt = ++sent
    onSettled(query, (error, isOk) => isOk ? isBack() : observe(attempt, error))
    send(query)
  }

  const reserve = () => {
    const refused = refusal()
    if (refused) return Promise.reject(refused)
    const attempt = ++sent
    return pool.reserve().then((conn) => {
      isBack()
      return conn
    }, (error) => {
      observe(attempt, error)
      throw error
    })
  }

  return guardStatements(pool, guard, { reserve })
}
