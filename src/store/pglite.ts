/**
 * Embedded Postgres: PGlite (real Postgres compiled to WASM) served on a loopback socket and
 * reached by the same postgres.js code as a real server. PGlite is one backend session, so
 * the client keeps a single connection: transactions must never interleave on it.
 */
import { Effect, Layer } from "effect"
import { mkdir, rm, writeFile } from "node:fs/promises"
import { Database } from "./database.ts"
import { makePostgresClient } from "./postgres.ts"

export interface EmbeddedPostgres {
  readonly url: string
  readonly close: () => Promise<void>
}

/** Starts PGlite on `dataDir` (in memory when undefined) behind a socket on 127.0.0.1. */
export const startEmbeddedPostgres = async (dataDir: string | undefined): Promise<EmbeddedPostgres> => {
  if (dataDir) await mkdir(dataDir, { recursive: true })
  // imported here, not at the top: a node on a real Postgres never loads PGlite's JavaScript
  // (measured: `deno task serve` on real services, at rest: 160.5 → 156.4 MB, two runs each)
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("@electric-sql/pglite-socket"),
  ])
  const db = await PGlite.create(dataDir)
  const server = new PGLiteSocketServer({ db, port: 0, host: "127.0.0.1" })
  await server.start()
  const url = `postgres://postgres@${server.getServerConn()}/postgres`
  return {
    url,
    close: async () => {
      await server.stop()
      await db.close()
    },
  }
}

/**
 * Database layer on embedded PGlite; `dataDir` undefined keeps it in memory (tests).
 * `urlFile`, when given, holds the socket URL while the store is open: it tells other
 * processes (the replay CLI) that this data directory is in use.
 */
export const PgliteLive = (dataDir: string | undefined, urlFile?: string): Layer.Layer<Database> =>
  Layer.effect(
    Database,
    Effect.gen(function* () {
      const embedded = yield* Effect.acquireRelease(
        Effect.promise(() => startEmbeddedPostgres(dataDir)),
        (e) => Effect.promise(() => e.close()),
      )
      if (urlFile) {
        yield* Effect.acquireRelease(
          Effect.promise(() => writeFile(urlFile, `${embedded.url}\n`)),
          () => Effect.promise(() => rm(urlFile, { force: true })),
        )
      }
      const sql = yield* Effect.acquireRelease(
        Effect.sync(() => makePostgresClient(embedded.url, 1)),
        (sql) => Effect.promise(() => sql.end({ timeout: 5 })),
      )
      return { sql, kind: "pglite" as const, url: embedded.url }
    }),
  )
