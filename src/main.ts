/** `deno task serve`: runs Hamlet until SIGINT/SIGTERM, then shuts down gracefully. */
// first: must run before anything imports effect
import { restoreAsyncHooks } from "./platform/no-async-context.ts"
import { Effect, Layer } from "effect"
import { AppLive, BusFromConfig, DatabaseFromConfig, LoggingLive } from "./app.ts"
import { ServerConfig } from "./server-config.ts"

restoreAsyncHooks()

const program = Effect.gen(function* () {
  const config = yield* ServerConfig
  const app = AppLive({ configPath: config.configPath, port: config.port, cleanupEvery: config.cleanupEvery })
    .pipe(
      Layer.provide(Layer.mergeAll(DatabaseFromConfig(config), BusFromConfig(config))),
      Layer.provide(LoggingLive(config.logLevel)),
    )
  return yield* Layer.launch(app).pipe(Effect.provide(LoggingLive(config.logLevel)))
})

const controller = new AbortController()
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => controller.abort())
}
const exit = await Effect.runPromiseExit(program, { signal: controller.signal })
if (exit._tag === "Failure" && !controller.signal.aborted) {
  console.error(String(exit.cause))
  Deno.exit(1)
}
Deno.exit(0)
