/**
 * A fresh store (embedded PGlite, or a scratch database on the real Postgres) that a server
 * reaches only through a TCP proxy (tcp-proxy.ts), so a test can refuse, cut or drop its
 * connections while the server runs. Everything is released when `scope` closes.
 */
import { Effect, Layer, Scope } from "effect"
import { Database } from "../../src/store/database.ts"
import { startEmbeddedPostgres } from "../../src/store/pglite.ts"
import { makePostgresClient } from "../../src/store/postgres.ts"
import { scratchPostgresUrl, type StoreKind } from "./database.ts"
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts"

export interface ProxiedStore {
  readonly proxy: TcpProxy
  /** The Database layer for the server: its pool dials the proxy. */
  readonly database: Layer.Layer<Database>
}

/** The store's own URL (not proxied), released with `scope`. */
const _targetUrl = (kind: StoreKind, scope: Scope.Scope): Promise<string> =>
  kind === "postgres"
    ? Effect.runPromise(Scope.provide(scratchPostgresUrl, scope))
    : Effect.runPromise(Scope.provide(
      Effect.acquireRelease(
        Effect.promise(() => startEmbeddedPostgres(undefined)),
        (embedded) => Effect.promise(() => embedded.close()),
      ),
      scope,
    )).then((embedded) => embedded.url)

export const startProxiedStore = async (kind: StoreKind, scope: Scope.Scope): Promise<ProxiedStore> => {
  const url = new URL(await _targetUrl(kind, scope))
  const proxy = await startTcpProxy(url.hostname, Number(url.port || 5432))
  await Effect.runPromise(Scope.addFinalizer(scope, Effect.promise(() => proxy.close())))
  url.host = `127.0.0.1:${proxy.port}`
  const proxied = url.toString()
  const database = Layer.effect(
    Database,
    Effect.acquireRelease(
      // PGlite is one backend session: one connection, as PgliteLive keeps
      Effect.sync(() => ({
        sql: makePostgresClient(proxied, kind === "pglite" ? 1 : 4),
        kind,
        url: proxied,
      })),
      ({ sql }) => Effect.promise(() => sql.end({ timeout: 1 })),
    ),
  )
  return { proxy, database }
}
