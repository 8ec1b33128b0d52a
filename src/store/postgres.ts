/** Database layer for a real Postgres server (DATABASE_URL). */
import { Effect, Layer } from "effect"
import postgres from "postgres"
import { Database } from "./database.ts"

export const makePostgresClient = (url: string, max = 10): postgres.Sql =>
  postgres(url, {
    max,
    onnotice: () => {},
    // int8 (seq, counts) as JS numbers: exact up to 2^53, far beyond any host's log
    types: {
      int8: { to: 20, from: [20], serialize: (n: number) => String(n), parse: (s: string) => Number(s) },
    },
    transform: { undefined: null },
  })

export const PostgresLive = (url: string, max = 10): Layer.Layer<Database> =>
  Layer.effect(
    Database,
    Effect.acquireRelease(
      Effect.sync(() => ({ sql: makePostgresClient(url, max), kind: "postgres" as const, url })),
      ({ sql }) => Effect.promise(() => sql.end({ timeout: 5 })),
    ),
  )
