/**
 * A private nats-server on a free port, for tests that kill and restart the server (outages).
 * Scoped: the process is killed when the Scope closes.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { Effect, type Scope } from "effect"
import { eventually } from "./eventually.ts"
import { freePort } from "./node-process.ts"
import { isAccepting } from "../../src/platform/tcp-probe.ts"

export const NATS_SERVER_BIN = process.env.HAMLET_NATS_SERVER_BIN ?? "/usr/sbin/nats-server"

export interface PrivateNatsServer {
  readonly url: string
  readonly port: number
  /** Kills the server (SIGKILL, like a crash) and waits for the process to exit. */
  readonly kill: Effect.Effect<void>
  /** Starts it again on the same port and waits until it accepts connections. */
  readonly restart: Effect.Effect<void, Error>
}

const _freePort = Effect.promise(freePort)

const _isListening = (port: number): Promise<boolean> => isAccepting(`tcp://127.0.0.1:${port}`, port, 200)

export const startNatsServer: Effect.Effect<PrivateNatsServer, Error, Scope.Scope> = Effect.gen(function* () {
  const port = yield* _freePort
  let child: ChildProcess | undefined
  let listening = false

  const kill = Effect.promise(() =>
    new Promise<void>((resolve) => {
      const current = child
      child = undefined
      listening = false
      if (!current || current.exitCode !== null || current.signalCode !== null) return resolve()
      current.once("exit", () => resolve())
      current.kill("SIGKILL")
    })
  )

  const start = Effect.gen(function* () {
    child = spawn(NATS_SERVER_BIN, ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" })
    const poll = setInterval(() => void _isListening(port).then((ok) => (listening = ok)), 10)
    yield* eventually(`nats-server on port ${port}`, () => listening, { timeoutMs: 10_000 }).pipe(
      Effect.ensuring(Effect.sync(() => clearInterval(poll))),
    )
  })

  yield* Effect.acquireRelease(start, () => kill)
  return { url: `nats://127.0.0.1:${port}`, port, kill, restart: start }
})
