/**
 * Test databases: a fresh in-memory PGlite, or a fresh database on the real Postgres
 * (created per suite, dropped after), so runs never share state.
 */
import { Effect, Layer, type Scope } from "effect"
import postgres from "postgres"
import type { DataDirInUse } from "../../src/store/data-dir-lock.ts"
import { type Database, type DatabaseError, query, type Sql } from "../../src/store/database.ts"
import { PgliteLive } from "../../src/store/pglite.ts"
import { PostgresLive } from "../../src/store/postgres.ts"
import { DATABASE_URL, uniqueSuffix } from "./services.ts"

export type StoreKind = "pglite" | "postgres"

/** Creates `hamlet_test_<suffix>` on the real server; drops it when the scope closes. */
export const scratchPostgresUrl: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    const name = `hamlet_test_${uniqueSuffix()}`
    const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} })
    await admin.unsafe(`create database ${name}`)
    await admin.end()
    const url = new URL(DATABASE_URL)
    url.pathname = `/${name}`
    return url.toString()
  }),
  (url) =>
    Effect.promise(async () => {
      const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} })
      await admin.unsafe(`drop database if exists ${new URL(url).pathname.slice(1)} with (force)`).catch(
        () => {},
      )
      await admin.end()
    }),
)

/**
 * A Database layer on a fresh store of the given kind (PGlite in memory unless `dataDir`; its
 * lock file goes beside it, `<dataDir>.lock`, so pass a directory inside the test's temp dir).
 */
export const testDatabase = (kind: StoreKind, dataDir?: string): Layer.Layer<Database, DataDirInUse> =>
  kind === "pglite"
    ? PgliteLive(dataDir)
    : Layer.unwrap(Effect.map(scratchPostgresUrl, (url) => PostgresLive(url)))

/**
 * Ends the backend running a `pg_sleep` statement that carries `marker` (in a comment), as a
 * lost connection: polls with a deadline until the statement runs, then terminates it from
 * this session. Fails if it never showed up.
 */
export const terminateSleeping = (sql: Sql, marker: string): Effect.Effect<void, Error | DatabaseError> =>
  Effect.gen(function* () {
    const pattern = `%${marker}%`
    for (let i = 0; i < 100; i++) {
      const rows = yield* query(() =>
        sql`select pg_terminate_backend(pid) as ended from pg_stat_activity
            where wait_event = 'PgSleep' and query like ${pattern}`
      )
      if (rows.length > 0) return
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.fail(new Error(`no statement marked ${marker} was seen running`))
  })
