/** Database layer for a real Postgres server (DATABASE_URL). */
import { Effect, Layer } from "effect"
import postgres from "postgres"
import { Database } from "./database.ts"
import { dialPostgres } from "./pg-socket.ts"
import { guardQueuedReservations } from "./queued-reservations.ts"
import { guardReachability } from "./reachability.ts"

/** How long a connect, or the startup after it, may take (postgres.js' default is 30 s). */
const CONNECT_TIMEOUT_S = 10

/**
 * Seconds before a connection tries again after a failed connect: postgres.js' exponential
 * back-off with jitter, capped at 1 s instead of 20 s, so a node is back within a second of
 * Postgres (reachability.ts already spares callers the wait while it is down).
 */
const reconnectBackoff = (retries: number): number =>
  (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 1)

/**
 * Plain TCP (no TLS, no Unix socket) uses Deno's own sockets (platform/tcp-socket.ts); anything
 * else, or HAMLET_PG_NODE_NET=1, keeps postgres.js' node:net.
 */
const isPlainTcp = (url: string): boolean => {
  const parsed = URL.parse(url)
  if (!parsed || process.env.HAMLET_PG_NODE_NET === "1") return false
  const ssl = parsed.searchParams.get("sslmode") ?? parsed.searchParams.get("ssl")
  return parsed.hostname !== "" && !parsed.hostname.startsWith("%2F") && (ssl === null || ssl === "disable")
}

export const makePostgresClient = (
  url: string,
  max = 10,
): postgres.Sql =>
  guardReachability(guardQueuedReservations(postgres(url, {
    max,
    onnotice: () => {},
    connect_timeout: CONNECT_TIMEOUT_S,
    backoff: reconnectBackoff,
    ...(isPlainTcp(url)
      ? {
        socket: (options: { host: ReadonlyArray<string>; port: ReadonlyArray<number> }) =>
          dialPostgres(options.host[0], options.port[0], CONNECT_TIMEOUT_S * 1000),
      }
      : {}),
    // int8 (seq, counts) as JS numbers: exact up to 2^53, far beyond any host's log
    types: {
      int8: { to: 20, from: [20], serialize: (n: number) => String(n), parse: (s: string) => Number(s) },
    },
    transform: { undefined: null },
    // Generic plans of statements on hamlet_events lock every partition at each execution
    // (one partition per host: 10,000 hosts exhaust the lock table); custom plans prune at
    // plan time and lock one. HAMLET_PG_PLAN_CACHE_MODE=auto restores Postgres' default.
    // JIT off: short OLTP statements never repay compilation, and a read transaction's
    // enable_sort = off prices any sort at 1e10, past jit_above_cost (measured: a 0.1 ms
    // comment list took 250 ms, 224 ms of it compiling)
    connection: {
      plan_cache_mode: process.env.HAMLET_PG_PLAN_CACHE_MODE ?? "force_custom_plan",
      jit: "off",
    },
  })))

export const PostgresLive = (
  url: string,
  max = 10,
): Layer.Layer<Database> =>
  Layer.effect(
    Database,
    Effect.acquireRelease(
      Effect.sync(() => ({
        sql: makePostgresClient(url, max),
        kind: "postgres" as const,
        url,
      })),
      ({ sql }) => Effect.promise(() => sql.end({ timeout: 5 })),
    ),
  )
