/**
 * Starts a whole Hamlet server for end-to-end tests: config path, store kind and bus
 * kind are the test's choice; the HTTP port is picked free. `close()` shuts it down.
 */
import { ConfigProvider, Context, Effect, Exit, Layer, Logger, References, Scope } from "effect"
import { Bus } from "../../src/bus/bus.ts"
import { MemoryBusLive } from "../../src/bus/memory.ts"
import { NatsBusLive } from "../../src/bus/nats.ts"
import { AppLive, IngressLive } from "../../src/app.ts"
import { Supervisor } from "../../src/actors/supervisor.ts"
import { HttpServer } from "../../src/ingress/ingress.ts"
import { Database, type Sql } from "../../src/store/database.ts"
import { type StoreKind, testDatabase } from "./database.ts"
import { requestWithHost } from "./http.ts"
import { NATS_URL } from "./services.ts"

export interface TestServer {
  readonly url: string
  readonly port: number
  /** The server's own SQL client (owner role): for asserting on log rows and tables. */
  readonly sql: Sql
  readonly bus: Bus["Service"]
  readonly supervisor: Supervisor["Service"]
  /** An HTTP request to the server with the given Host header (POST when a body is given). */
  readonly call: (
    host: string,
    path: string,
    init?: { method?: string; body?: string | Uint8Array; headers?: Record<string, string> },
  ) => Promise<Response>
  /** Shuts the server down (again: the same promise). */
  readonly close: () => Promise<void>
}

export interface TestServerOptions {
  readonly configPath?: string
  readonly store?: StoreKind
  readonly bus?: "memory" | "nats"
  /** Reuse a database layer (e.g. PGlite on a data dir, for restart tests). */
  readonly database?: Layer.Layer<Database, Error>
  /** Only the HTTP ingress and routing, no host actors (a split node's main isolate). */
  readonly ingressOnly?: boolean
  /** Settings the server reads through Effect Config (e.g. HAMLET_METRICS_TOKEN), before the environment. */
  readonly env?: Readonly<Record<string, string>>
  /** Loggers beside the console's, at its level (errors unless HAMLET_TEST_LOG_LEVEL=debug): a test's capture. */
  readonly loggers?: ReadonlyArray<Logger.Logger<unknown, unknown>>
}

const quietLogs = (loggers: ReadonlyArray<Logger.Logger<unknown, unknown>> = []) =>
  Layer.mergeAll(
    Logger.layer([Logger.consoleJson, ...loggers]),
    Layer.succeed(
      References.MinimumLogLevel,
      process.env.HAMLET_TEST_LOG_LEVEL === "debug" ? "Debug" : "Error",
    ),
  )

export const startTestServer = async (options: TestServerOptions = {}): Promise<TestServer> => {
  const scope = Effect.runSync(Scope.make())
  const database = options.database ?? testDatabase(options.store ?? "pglite")
  const bus = options.bus === "nats" ? NatsBusLive(NATS_URL) : MemoryBusLive
  const appOptions = { configPath: options.configPath ?? "./config.json", port: 0 }
  const app = options.ingressOnly ? IngressLive(appOptions) : AppLive(appOptions)
  const logs = quietLogs(options.loggers)
  const layer = app.pipe(
    Layer.provideMerge(Layer.mergeAll(database, bus)),
    Layer.provide(logs),
    Layer.provide(ConfigProvider.layer(
      ConfigProvider.orElse(ConfigProvider.fromEnvRecord({ ...options.env }), ConfigProvider.fromEnv()),
    )),
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope).pipe(Effect.provide(logs)))
    .catch(async (e) => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      throw e
    })
  const { port } = Context.get(context, HttpServer)
  const { sql } = Context.get(context, Database)
  const url = `http://127.0.0.1:${port}`
  let closing: Promise<void> | undefined
  return {
    url,
    port,
    sql,
    bus: Context.get(context, Bus),
    supervisor: Context.get(context, Supervisor),
    call: (host, path, init) => requestWithHost(port, host, path, init),
    close: () => closing ??= Effect.runPromise(Scope.close(scope, Exit.void)),
  }
}
