/** Database layer for a real Postgres server (DATABASE_URL). */
import { Effect, Layer } from "effect"
import postgres from "postgres"
import { DenoSocket } from "../platform/tcp-socket.ts"
import { Database } from "./database.ts"

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
  postgres(url, {
    max,
    onnotice: () => {},
    ...(isPlainTcp(url)
      ? {
        socket: (options: { host: ReadonlyArray<string>; port: ReadonlyArray<number> }) =>
          DenoSocket.connect(options.host[0], options.port[0]),
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
  })

export const PostgresLive = (
  url: string,
  max = Number(process.env.HAMLET_PG_POOL ?? 10),
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
