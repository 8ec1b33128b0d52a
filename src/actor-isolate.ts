/**
 * Entry of the actor isolate of a split node (node-isolates.ts): host actors and the
 * scheduler, no HTTP. Reports ready/failed/stopped and its actor metrics to the main
 * isolate; drains and stops when asked; follows a run-time host when the ingress asks, and
 * says whether it then serves it (the ingress routes the host only after that).
 */
// first: must run before anything imports effect
import { restoreAsyncHooks } from "./platform/no-async-context.ts"
import { Cause, Context, Effect, Exit, Fiber, Layer, Schedule } from "effect"
import { localActorMetrics } from "./actors/actor-metrics.ts"
import { Supervisor } from "./actors/supervisor.ts"
import { ActorsLive, fromConfig, LoggingLive, reportStrayConnectionErrors } from "./app.ts"
import type { IsolateCommand, IsolateReport } from "./node-isolates.ts"
import { ServerConfig } from "./server-config.ts"

restoreAsyncHooks()
// a connection error of a statement postgres.js sent for itself must not end the isolate
reportStrayConnectionErrors()

const isolate = globalThis as unknown as {
  postMessage: (report: IsolateReport) => void
  onmessage: ((event: MessageEvent<IsolateCommand>) => void) | null
  close: () => void
}

/** Set once the actors run: converges one host, true when its actor runs here afterwards. */
let followHost: ((host: string) => Promise<boolean>) | undefined

const program = Effect.gen(function* () {
  const config = yield* ServerConfig
  const context = yield* Layer.build(fromConfig(config, ActorsLive))
  const supervisor = Context.get(context, Supervisor)
  const runPromise = Effect.runPromiseWith(yield* Effect.context<never>())
  followHost = (host) =>
    runPromise(
      supervisor.syncHost(host).pipe(
        Effect.catchCause((cause) =>
          Effect.as(Effect.logError("could not follow a host", { host }, cause), false)
        ),
      ),
    )
  isolate.postMessage({ type: "ready" })
  let reported = ""
  yield* Effect.sync(() => {
    const metrics = localActorMetrics()
    const text = JSON.stringify(metrics)
    if (text !== reported) isolate.postMessage({ type: "metrics", metrics })
    reported = text
  }).pipe(Effect.repeat(Schedule.spaced("250 millis")), Effect.forkScoped)
  return yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(LoggingLive("Info")))

const fiber = Effect.runFork(program)
isolate.onmessage = (event) => {
  const command = event.data
  if (command.type === "stop") Effect.runFork(Fiber.interrupt(fiber))
  else if (command.type === "follow-host") {
    const followed = followHost?.(command.host) ?? Promise.resolve(false)
    void followed.then((isServed) => isolate.postMessage({ type: "host-followed", id: command.id, isServed }))
  }
}
const exit = await Effect.runPromise(Fiber.await(fiber))
if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
  isolate.postMessage({ type: "failed", message: Cause.pretty(exit.cause) })
}
isolate.postMessage({ type: "stopped" })
isolate.close()
