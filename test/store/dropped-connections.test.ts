/**
 * Connections the store loses (real Postgres, a scratch database): a backend terminated while its
 * transaction sits idle, and a Postgres that refuses connections for a while (through a TCP proxy).
 * The process never crashes, callers fail at once instead of waiting, and the pool is whole again
 * as soon as Postgres is back.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import net from "node:net"
import postgres from "postgres"
import { describe } from "vitest"
import { isConnectionLost, query } from "../../src/store/database.ts"
import { makePostgresClient } from "../../src/store/postgres.ts"
import { reserveConnection } from "../../src/store/reserved-connection.ts"
import { withOwnerTransaction } from "../../src/store/transaction.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { eventually } from "../support/eventually.ts"
import { freePort } from "../support/node-process.ts"
import { checkService } from "../support/services.ts"
import { startTcpProxy } from "../support/tcp-proxy.ts"

const available = await checkService("postgres")

/** A pool on `url`, ended with the scope. */
const _pool = (url: string, max: number) =>
  Effect.acquireRelease(
    Effect.sync(() => makePostgresClient(url, max)),
    (sql) => Effect.promise(() => sql.end({ timeout: 1 })),
  )

const _admin = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => postgres(url, { max: 1, onnotice: () => {} })),
    (sql) => Effect.promise(() => sql.end({ timeout: 1 })),
  )

/**
 * A TCP proxy to Postgres that drops a connection as its client sends a message containing
 * `marker` (once per `armOnce`), before the server sees it; `cut` drops every connection.
 */
const _markerProxy = (url: URL) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const port = await freePort()
      const sockets = new Set<net.Socket>()
      let marker: string | undefined
      let drops = 0
      const server = net.createServer((client) => {
        const upstream = net.connect(Number(url.port || 5432), url.hostname)
        for (const socket of [client, upstream]) {
          sockets.add(socket)
          socket.on("error", () => socket.destroy())
          socket.once("close", () => sockets.delete(socket))
        }
        client.once("close", () => upstream.destroy())
        upstream.once("close", () => client.destroy())
        upstream.pipe(client)
        client.on("data", (chunk: Buffer) => {
          if (marker !== undefined && chunk.includes(marker)) {
            marker = undefined
            drops++
            client.destroy()
            upstream.destroy()
            return
          }
          upstream.write(chunk)
        })
      })
      await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve))
      return {
        url: Object.assign(new URL(url), { host: `127.0.0.1:${port}` }).toString(),
        armOnce: (text: string) => void (marker = text),
        drops: () => drops,
        cut: () => {
          for (const socket of sockets) socket.destroy()
        },
        close: () =>
          new Promise<void>((resolve) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => resolve())
          }),
      }
    }),
    (proxy) => Effect.promise(() => proxy.close()),
  )

describe.skipIf(!available)("dropped store connections", () => {
  it.live(
    "a statement sent after its idle transaction's backend was terminated fails; the process and the pool carry on",
    () =>
      Effect.gen(function* () {
        const url = yield* scratchPostgresUrl
        const sql = yield* _pool(url, 2)
        const admin = yield* _admin(url)
        const exit = yield* Effect.exit(withOwnerTransaction(sql, (tx) =>
          Effect.gen(function* () {
            const [{ pid }] = yield* query(() => tx`select pg_backend_pid() as pid`)
            // the transaction is idle (nothing in flight on its connection) when its backend ends
            yield* query(() => admin`select pg_terminate_backend(${pid})`)
            let isGone = false
            yield* eventually("the backend to end", () => isGone, { timeoutMs: 5_000 }).pipe(
              Effect.raceFirst(Effect.forever(
                query(() => admin`select 1 from pg_stat_activity where pid = ${pid}`).pipe(
                  Effect.map((rows) => void (isGone = rows.length === 0)),
                ),
              )),
            )
            // a few more round trips: the client has read the close of its socket by then
            for (let i = 0; i < 3; i++) yield* query(() => admin`select 1`)
            // before: sent on the closed connection, it crashed the process from a timer (a write
            // to postgres.js' null socket) and never settled
            return yield* query(() => tx`select 1 as n`)
          })))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const error = exit.cause.reasons.find((r) => r._tag === "Fail")
          assert.isTrue(error !== undefined && isConnectionLost((error as { error: unknown }).error))
        }
        const after = yield* withOwnerTransaction(sql, (tx) => query(() => tx`select 2 as n`))
        assert.strictEqual(after[0].n, 2)
      }),
    30_000,
  )

  it.live(
    "while Postgres refuses connections statements fail at once, and the pool serves again as soon as it accepts",
    () =>
      Effect.gen(function* () {
        const url = new URL(yield* scratchPostgresUrl)
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(() => startTcpProxy(url.hostname, Number(url.port || 5432))),
          (p) => Effect.promise(() => p.close()),
        )
        url.host = `127.0.0.1:${proxy.port}`
        const sql = yield* _pool(url.toString(), 3)
        assert.strictEqual((yield* query(() => sql`select 1 as n`))[0].n, 1)

        yield* Effect.promise(() => proxy.refuse())
        // more refusals than the pool has connections: before, each refused connect kept one of
        // them "connecting" for good, and every later statement waited for ever
        for (let i = 0; i < 12; i++) {
          const started = Date.now()
          const failed = yield* Effect.flip(
            query(() => sql`select 1`).pipe(Effect.timeout(3_000)),
          )
          assert.strictEqual(failed._tag, "DatabaseError", `statement ${i} failed with ${String(failed)}`)
          assert.isBelow(Date.now() - started, 1_500, `statement ${i} waited`)
        }
        const refusedAt = Date.now()
        yield* Effect.promise(() => proxy.accept())
        let isBack = false
        yield* eventually("statements to run again", () => isBack, { timeoutMs: 5_000 }).pipe(
          Effect.raceFirst(Effect.forever(
            query(() => sql`select 1 as n`).pipe(
              Effect.timeout(1_000),
              Effect.map(() => void (isBack = true)),
              Effect.ignore,
              Effect.andThen(Effect.sleep("20 millis")),
            ),
          )),
        )
        assert.isBelow(Date.now() - refusedAt, 5_000)
        // every connection of the pool works again (none left "connecting")
        const rows = yield* Effect.all(
          Array.from({ length: 6 }, () => query(() => sql`select pg_sleep(0.05), 1 as n`)),
          { concurrency: "unbounded" },
        ).pipe(Effect.timeout(5_000))
        assert.strictEqual(rows.length, 6)
      }),
    30_000,
  )

  it.live(
    "a connection lost between its reservation and its first statement is known lost: the statement is refused, never written",
    () =>
      Effect.gen(function* () {
        const proxy = yield* _markerProxy(new URL(yield* scratchPostgresUrl))
        const sql = yield* _pool(proxy.url, 1)
        yield* query(() => sql`select 1`)
        const reserved = yield* query(() => reserveConnection(sql))
        // closed before the caller sent anything: before, the reservation did not know which
        // connection it held until its first statement, which postgres.js wrote to the closed
        // connection's null socket (a crash in a timer) or, reconnected, into another caller's session
        proxy.cut()
        yield* eventually("the reservation to know its connection was lost", reserved.isLost, {
          timeoutMs: 5_000,
        })
        const refused = yield* Effect.flip(query(() => reserved.sql`select 1 as n`))
        assert.isTrue(isConnectionLost(refused))
        reserved.release() // does nothing: postgres.js has the connection back
        let isBack = false
        yield* eventually("the pool to serve again", () => isBack, { timeoutMs: 5_000 }).pipe(
          Effect.raceFirst(Effect.forever(
            withOwnerTransaction(sql, (tx) => query(() => tx`select 2 as n`)).pipe(
              Effect.map(() => void (isBack = true)),
              Effect.ignore,
              Effect.andThen(Effect.sleep("20 millis")),
            ),
          )),
        )
      }),
    30_000,
  )
})
