/**
 * Which store the replay CLI opens: DATABASE_URL when set (safe beside running servers),
 * else the embedded PGlite under HAMLET_DATA (default ./.hamlet)/pg, opened in this process.
 * PGlite is one backend session and its socket server interleaves clients message by
 * message, so a second client could corrupt the server's queries: while a server holds the
 * directory (its HAMLET_DATA/pglite.url answers) the CLI refuses instead of connecting.
 */
import { Effect, Layer, Schema } from "effect"
import { readFile, stat } from "node:fs/promises"
import { join } from "node:path"
import type { Database } from "../store/database.ts"
import { isAccepting } from "../platform/tcp-probe.ts"
import { PgliteLive } from "../store/pglite.ts"
import { PostgresLive } from "../store/postgres.ts"

export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  message: Schema.String,
}) {}

export interface StoreChoice {
  readonly layer: Layer.Layer<Database>
  readonly description: string
}

export const storeFromEnv = (env: {
  readonly databaseUrl?: string
  readonly dataDir?: string
}): Effect.Effect<StoreChoice, StoreUnavailable> =>
  Effect.gen(function* () {
    if (env.databaseUrl) {
      const url = new URL(env.databaseUrl)
      return { layer: PostgresLive(env.databaseUrl, 2), description: `postgres ${url.host}${url.pathname}` }
    }
    const dataDir = env.dataDir ?? "./.hamlet"
    const pgDir = join(dataDir, "pg")
    const urlFile = join(dataDir, "pglite.url")
    const serverUrl = yield* Effect.promise(() =>
      readFile(urlFile, "utf8").then((t) => t.trim(), () => undefined)
    )
    if (serverUrl && (yield* Effect.promise(() => isAccepting(serverUrl, 5432)))) {
      return yield* new StoreUnavailable({
        message: `the embedded store ${pgDir} is open by a running server (${urlFile}); ` +
          `stop the server first, or run the server and this command with DATABASE_URL`,
      })
    }
    const exists = yield* Effect.promise(() => stat(pgDir).then(() => true, () => false))
    if (!exists) {
      return yield* new StoreUnavailable({
        message: `no embedded store at ${pgDir} (set HAMLET_DATA or DATABASE_URL)`,
      })
    }
    return { layer: PgliteLive(pgDir), description: `embedded ${pgDir}` }
  })
