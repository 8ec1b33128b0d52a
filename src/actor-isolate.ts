/**
 * Entry of the actor isolate of a split node (node-isolates.ts): host actors and the
 * scheduler, no HTTP. Reports ready/failed/stopped and its actor metrics to the main
 * isolate; drains and stops when asked.
 */
// first: must run before anything imports effect
import { restoreAsyncHooks } from "./platform/no-async-context.ts"
import { Cause, Effect, Exit, Fiber, Layer, Schedule } from "effect"
import { localActorMetrics } from "./actors/actor-metrics.ts"
import { ActorsLive, fromConfig, LoggingLive } from "./app.ts"
import type { IsolateCommand, IsolateReport } from "./node-isolates.ts"
import { ServerConfig } from "./server-config.ts"

restoreAsyncHooks()

const isolate = globalThis as unknown as {
  postMessage: (report: IsolateReport) => void
  onmessage: ((event: MessageEvent<IsolateCommand>) => void) | null
  close: () => void
}

const program = Effect.gen(function* () {
  const config = yield* ServerConfig
  yield* Layer.build(fromConfig(config, ActorsLive))
  isolate.postMessage({ type: "ready" })
  let reported = ""
  yield* Effect.sync(() => {
    const metrics = localActorMetrics()
    const text = JSON.stringify(metrics)
    if (text !== reported) isolate.postMessage({ type: "metrics", metrics })
    reported = text
  }).pipe(Effect.repeat(Schedule.spaced("1 second")), Effect.forkScoped)
  return yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(LoggingLive("Info")))

const fiber = Effect.runFork(program)
isolate.onmessage = (event) => {
  if (event.data.type === "stop") Effect.runFork(Fiber.interrupt(fiber))
}
const exit = await Effect.runPromise(Fiber.await(fiber))
if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
  isolate.postMessage({ type: "failed", message: Cause.pretty(exit.cause) })
}
isolate.postMessage({ type: "stopped" })
isolate.close()
