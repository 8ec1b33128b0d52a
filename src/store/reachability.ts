/**
 * Fails fast while Postgres cannot be reached. postgres.js keeps a statement queued until one of
 * its connections connects, retrying with back-off, so during an outage every request would wait
 * out its handler's time limit. Once a connect fails as unreachable (refused, timed out, no such
 * host), statements are refused at once with `STORE_UNREACHABLE` — except one every `probeMs`,
 * sent to try again, one at a time: the first statement answered opens the way for all. A
 * statement sent before the latest answer that fails as unreachable afterwards (its connect was
 * tried during the outage) is old news and leaves the way open.
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

/**
 * A probe unanswered this long no longer holds the next one back. A refused connect fails within
 * the reconnect back-off (postgres.ts: at most 1 s); one outstanding past that is most likely a
 * connect timing out against a host that does not answer (10 s).
 */
const PROBE_STUCK_MS = 2_000

/** A probe unanswered this long (well past a connect's time limit and back-off) is not counted. */
const PROBE_FORGOTTEN_MS = 30_000

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
export const guardReachability = (
  pool: postgres.Sql,
  probeMs = PROBE_MS,
  stuckMs = PROBE_STUCK_MS,
): postgres.Sql => {
  /** Probes out at once, at most: one per connection, each of which can be connecting. */
  const maxProbes = Math.max(1, Number(pool.options?.max) || 1)
  let downWith: Error | undefined
  let lastTry = 0
  /** Statements and reservations sent so far, and how many of them an answer came after. */
  let sent = 0
  let answeredAfter = 0
  /** Statements and reservations sent while down to see whether Postgres is back: when, by attempt. */
  const probes = new Map<number, number>()

  /**
   * The attempt number of a statement or reservation that goes, or its refusal. While down, one
   * probe at a time: a pool whose reconnects are slower than `probeMs` (one connection, each
   * refused connect followed by a back-off) would otherwise queue probes faster than it fails
   * them, and a request let through would wait out its time limit (504) rather than hear 503. A
   * probe unanswered for `stuckMs` (a connect timing out against a silent host) lets another go,
   * up to one per connection of the pool, so they never queue behind each other.
   */
  const admit = (): number | Error => {
    if (downWith) {
      const now = performance.now()
      // a probe never answered (dropped somewhere) must not hold its place for good
      for (const [attempt, at] of probes) if (now - at >= PROBE_FORGOTTEN_MS) probes.delete(attempt)
      const isProbing = [...probes.values()].some((at) => now - at < stuckMs)
      if (isProbing || probes.size >= maxProbes || now - lastTry < probeMs) {
        const message = `Postgres is unreachable (${downWith.message}); refused without trying`
        return Object.assign(new Error(message), { code: STORE_UNREACHABLE })
      }
      lastTry = now // this one goes: its outcome says whether Postgres is back
      probes.set(sent + 1, now)
    }
    return ++sent
  }
  const settled = (attempt: number, error: unknown) => {
    if (error === undefined) {
      answeredAfter = sent
      if (!downWith) return
      downWith = undefined
      probes.clear() // those still out are old news, whatever they come to
      return
    }
    probes.delete(attempt)
    if (!isUnreachable(error) || attempt <= answeredAfter) return
    downWith ??= error instanceof Error ? error : new Error(String(error))
    lastTry = performance.now()
  }

  const guard: StatementGuard = (query, send) => {
    const attempt = admit()
    if (attempt instanceof Error) return query.reject(attempt)
    onSettled(query, (error, isOk) => settled(attempt, isOk ? undefined : error))
    send(query)
  }

  const reserve = () => {
    const attempt = admit()
    if (attempt instanceof Error) return Promise.reject(attempt)
    return pool.reserve().then((conn) => {
      settled(attempt, undefined)
      return conn
    }, (error) => {
      settled(attempt, error)
      throw error
    })
  }

  return guardStatements(pool, guard, { reserve })
}
