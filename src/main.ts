/**
 * `deno task serve`: runs Hamlet until SIGINT/SIGTERM, then shuts down gracefully. With NATS
 * and Postgres the node runs in two isolates (node-isolates.ts): this one serves HTTP, a
 * worker runs the host actors; HAMLET_ISOLATES=1 keeps everything in one.
 */
// first: must run before anything imports effect
import { restoreAsyncHooks } from "./platform/no-async-context.ts"
import { Cause, Effect, Layer } from "effect"
import { AppLive, fromConfig, IngressLive, LoggingLive, reportStrayConnectionErrors } from "./app.ts"
import { isSplit, startActorIsolate } from "./node-isolates.ts"
import { ServerConfig } from "./server-config.ts"
import { DataDirInUse } from "./store/data-dir-lock.ts"

restoreAsyncHooks()
// a connection error of a statement postgres.js sent for itself must not end the isolate
reportStrayConnectionErrors()

/** SIGINT/SIGTERM interrupt the node: said in the log before the drain begins. */
const announcingStop = <A, E, R>(node: Effect.Effect<A, E, R>) =>
  Effect.onInterrupt(node, () => Effect.logInfo("stopping: answering the requests taken, then exiting"))

const program = Effect.gen(function* () {
  const config = yield* ServerConfig
  const logging = LoggingLive(config.logLevel)
  if (!isSplit(config)) {
    return yield* Layer.launch(fromConfig(config, AppLive)).pipe(announcingStop, Effect.provide(logging))
  }
  // the actors first, so the ingress never answers "no responders" at start; on shutdown the
  // ingress stops taking requests first, then the actors drain what is queued
  return yield* Effect.gen(function* () {
    const actors = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => startActorIsolate(), catch: (e) => e as Error }),
      (isolate) => Effect.promise(() => isolate.stop()),
    )
    yield* Effect.logInfo("node split: HTTP ingress in this isolate, host actors in a worker isolate")
    return yield* Effect.raceFirst(
      Layer.launch(fromConfig(config, IngressLive)),
      Effect.promise(() => actors.crashed).pipe(Effect.flatMap(Effect.fail)),
    )
  }).pipe(Effect.scoped, announcingStop, Effect.provide(logging))
})

const controller = new AbortController()
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => controller.abort())
}
const exit = await Effect.runPromiseExit(program, { signal: controller.signal })
if (exit._tag === "Failure" && !controller.signal.aborted) {
  const failure = exit.cause.reasons.find(Cause.isFailReason)?.error
  console.error(
    failure instanceof DataDirInUse
      ? `hamlet: ${failure.message}; stop it, or give this server its own HAMLET_DATA or a DATABASE_URL`
      : String(exit.cause),
  )
  Deno.exit(1)
}
Deno.exit(0)
