/**
 * Which store the replay CLI opens: DATABASE_URL when set (safe beside running servers),
 * else the embedded PGlite under HAMLET_DATA (default ./.hamlet)/pg, opened in this process.
 * Never beside a server on it: PGlite is one backend session (a second client would
 * interleave with the server's queries) and a second PGlite on the directory loses writes,
 * so while a server (or another CLI) holds the directory's lock the CLI refuses; it holds the
 * lock itself while it runs, so no server starts on the store meanwhile.
 */
import { Effect, Layer, Schema } from "effect"
import { stat } from "node:fs/promises"
import { join } from "node:path"
import { Database } from "../store/database.ts"
import { PgliteLive } from "../store/pglite.ts"
import { PostgresLive } from "../store/postgres.ts"

export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  message: Schema.String,
}) {}

export interface StoreChoice {
  readonly layer: Layer.Layer<Database, StoreUnavailable>
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
    const exists = yield* Effect.promise(() => stat(pgDir).then(() => true, () => false))
    if (!exists) {
      return yield* new StoreUnavailable({
        message: `no embedded store at ${pgDir} (set HAMLET_DATA or DATABASE_URL)`,
      })
    }
    // the lock is taken when the layer is built, not checked here first: a server starting
    // between a check and the open would get the store too
    const layer = PgliteLive(pgDir).pipe(
      Layer.catchTag("DataDirInUse", (e) =>
        Layer.effect(
          Database,
          Effect.fail(
            new StoreUnavailable({
              message: `${e.message}; stop it first, or run the server and this command with DATABASE_URL`,
            }),
          ),
        )),
    )
    return { layer, description: `embedded ${pgDir}` }
  })
