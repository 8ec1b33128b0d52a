/**
 * Server settings from the environment (Effect Config): PORT, DATABASE_URL, NATS_URL,
 * HAMLET_CONFIG, HAMLET_DATA, LOG_LEVEL, HAMLET_CLEANUP_EVERY, HAMLET_ISOLATES, HAMLET_PG_POOL. Unset
 * DATABASE_URL/NATS_URL select the embedded
 * defaults (PGlite, in-process bus).
 */
import { Config, Duration, Option, Schema } from "effect"

export const ServerConfig = Config.all({
  port: Config.Port("PORT").pipe(Config.withDefault(8080)),
  databaseUrl: Config.option(Config.String("DATABASE_URL")).pipe(Config.map(Option.getOrUndefined)),
  natsUrl: Config.option(Config.String("NATS_URL")).pipe(Config.map(Option.getOrUndefined)),
  configPath: Config.String("HAMLET_CONFIG").pipe(Config.withDefault("./config.json")),
  dataDir: Config.String("HAMLET_DATA").pipe(Config.withDefault("./.hamlet")),
  logLevel: Config.LogLevel("LOG_LEVEL").pipe(Config.withDefault("Info" as const)),
  cleanupEvery: Config.schema(
    Schema.DurationFromString.check(
      Schema.makeFilter((d: Duration.Duration) =>
        Duration.toMillis(d) >= 1_000 || "the cleanup period must be at least 1 second"
      ),
    ),
    "HAMLET_CLEANUP_EVERY",
  ).pipe(Config.withDefault(Duration.hours(1))),
  /** Postgres connections per isolate (a real Postgres only; PGlite is one session). */
  pgPool: Config.schema(
    Schema.NumberFromString.check(
      Schema.makeFilter((n: number) =>
        (Number.isInteger(n) && n >= 1 && n <= 1000) ||
        "the pool must be a whole number of connections, 1 to 1000"
      ),
    ),
    "HAMLET_PG_POOL",
  ).pipe(Config.withDefault(10)),
  /** "auto": ingress and actors in two isolates with NATS, Postgres and 2+ cores (node-isolates.ts). */
  isolates: Config.Literals(["auto", "1", "2"] as const, "HAMLET_ISOLATES").pipe(
    Config.withDefault("auto" as const),
  ),
})
export type ServerConfig = Config.Success<typeof ServerConfig>
