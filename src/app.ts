/**
 * Wires Hamlet's layers: Database (Postgres or embedded PGlite), Bus (NATS or in-process),
 * the Supervisor (projects, actors, routing), the fleet-wide Scheduler and the HTTP server. Tests build the same
 * layer with their own database, bus and config path.
 */
import { Duration, Effect, Layer, Logger, References } from "effect"
import { join } from "node:path"
import { Bus } from "./bus/bus.ts"
import { MemoryBusLive } from "./bus/memory.ts"
import { NatsBusLive } from "./bus/nats.ts"
import { Supervisor, SupervisorLive } from "./actors/supervisor.ts"
import { HttpServer, makeIngress } from "./ingress/ingress.ts"
import { Scheduler, SchedulerLive } from "./schedule/scheduler.ts"
import type { ServerConfig } from "./server-config.ts"
import type { DataDirInUse } from "./store/data-dir-lock.ts"
import { Database } from "./store/database.ts"
import { PgliteLive } from "./store/pglite.ts"
import { PostgresLive } from "./store/postgres.ts"
import { dropStrayConnectionErrors } from "./store/stray-connection-errors.ts"

export const DatabaseFromConfig = (config: ServerConfig): Layer.Layer<Database, DataDirInUse> =>
  config.databaseUrl
    ? PostgresLive(config.databaseUrl, config.pgPool)
    : PgliteLive(join(config.dataDir, "pg"), join(config.dataDir, "pglite.url"))

export const BusFromConfig = (config: ServerConfig): Layer.Layer<Bus, Error> =>
  config.natsUrl ? NatsBusLive(config.natsUrl) : MemoryBusLive

/** Deno.serve on `port` (0 picks a free one); graceful shutdown on scope close. */
export const HttpServerLive = (port: number): Layer.Layer<HttpServer, never, Bus | Supervisor | Database> =>
  Layer.effect(
    HttpServer,
    Effect.gen(function* () {
      const handler = yield* makeIngress
      const server = yield* Effect.acquireRelease(
        // Deno.serve binds synchronously: addr is known when it returns
        Effect.sync(() => Deno.serve({ port, hostname: "0.0.0.0", onListen: () => {} }, handler)),
        (s) => Effect.promise(() => s.shutdown()),
      )
      yield* Effect.logInfo("listening", { port: server.addr.port })
      return { port: server.addr.port }
    }),
  )

export interface AppOptions {
  readonly configPath: string
  readonly port: number
  readonly cleanupEvery?: Duration.Duration
}

const schedulerOf = (options: AppOptions) => SchedulerLive(options.cleanupEvery ?? Duration.hours(1))

/** The whole server over given database and bus layers. */
export const AppLive = (
  options: AppOptions,
): Layer.Layer<HttpServer | Supervisor | Scheduler, Error, Database | Bus> =>
  Layer.mergeAll(HttpServerLive(options.port), schedulerOf(options)).pipe(
    Layer.provideMerge(SupervisorLive(options.configPath)),
  )

/** Half of a node split in two isolates (node-isolates.ts): the HTTP ingress, with routing but no host actors. */
export const IngressLive = (
  options: AppOptions,
): Layer.Layer<HttpServer | Supervisor, Error, Database | Bus> =>
  HttpServerLive(options.port).pipe(Layer.provideMerge(SupervisorLive(options.configPath, false)))

/** The other half: the host actors and the fleet-wide scheduler, no HTTP. */
export const ActorsLive = (options: AppOptions): Layer.Layer<Supervisor | Scheduler, Error, Database | Bus> =>
  schedulerOf(options).pipe(Layer.provideMerge(SupervisorLive(options.configPath)))

export const LoggingLive = (level: ServerConfig["logLevel"]) =>
  Layer.mergeAll(Logger.layer([Logger.consoleJson]), Layer.succeed(References.MinimumLogLevel, level))

/** A server layer (AppLive, IngressLive or ActorsLive) over the services and logging the settings name. */
export const fromConfig = <A>(
  config: ServerConfig,
  build: (options: AppOptions) => Layer.Layer<A, Error, Database | Bus>,
): Layer.Layer<A, Error> =>
  build({ configPath: config.configPath, port: config.port, cleanupEvery: config.cleanupEvery }).pipe(
    Layer.provide(Layer.mergeAll(DatabaseFromConfig(config), BusFromConfig(config))),
    Layer.provide(LoggingLive(config.logLevel)),
  )

/** Logs and drops postgres.js' unheld connection errors in this isolate (stray-connection-errors.ts). */
export const reportStrayConnectionErrors = (): void =>
  void dropStrayConnectionErrors((error) =>
    Effect.runFork(
      Effect.logError("dropped an unhandled Postgres connection error", error.message).pipe(
        Effect.provide(LoggingLive("Info")),
      ),
    )
  )
