/**
 * Connections the store loses (real Postgres, a scratch database): a backend terminated while its
 * transaction sits idle or while a reservation waits for it, and a Postgres that refuses
 * connections for a while (through a TCP proxy).
 * The process never crashes, callers fail at once instead of waiting, and the pool is whole again
 * as soon as Postgres is back.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import postgres from "postgres"
import { describe } from "vitest"
import { isConnectionLost, query } from "../../src/store/database.ts"
import { makePostgresClient } from "../../src/store/postgres.ts"
import { reserveConnection } from "../../src/store/reserved-connection.ts"
import { withOwnerTransaction } from "../../src/store/transaction.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { eventually, watchPromise } from "../support/eventually.ts"
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

/** A TCP proxy in front of the scratch database (test/support/tcp-proxy.ts), and its URL through it. */
const _proxied = Effect.gen(function* () {
  const url = new URL(yield* scratchPostgresUrl)
  const proxy = yield* Effect.acquireRelease(
    Effect.promise(() => startTcpProxy(url.hostname, Number(url.port || 5432))),
    (p) => Effect.promise(() => p.close()),
  )
  url.host = `127.0.0.1:${proxy.port}`
  return { proxy, url: url.toString() }
})

/** Polls `withOwnerTransaction` on `sql` until one succeeds (the pool serves again), within 5 s. */
const _servesAgain = (sql: postgres.Sql) => {
  let isBack = false
  return eventually("the pool to serve again", () => isBack, { timeoutMs: 5_000 }).pipe(
    Effect.raceFirst(Effect.forever(
      withOwnerTransaction(sql, (tx) => query(() => tx`select 2 as n`)).pipe(
        Effect.map(() => void (isBack = true)),
        Effect.ignore,
        Effect.andThen(Effect.sleep("20 millis")),
      ),
    )),
  )
}

/**
 * Reserves the pool's only connection by `holding` it, queues a second reservation behind it,
 * terminates the held connection's backend, and expects the queued one to settle as `expected`
 * (postgres.js 3.4.9 alone drops it: it never settles).
 */
const _queuedBehindClose = (
  holding: (sql: postgres.Sql, admin: postgres.Sql) => Promise<number>,
  expected: "served" | "lost",
) =>
  Effect.gen(function* () {
    const url = yield* scratchPostgresUrl
    const sql = yield* _pool(url, 1)
    const admin = yield* _admin(url)
    const pid = yield* Effect.promise(() => holding(sql, admin))
    // no free connection: it waits in postgres.js' queue, at its head
    const queued = watchPromise(reserveConnection(sql))
    yield* query(() => admin`select pg_terminate_backend(${pid})`)
    yield* eventually("the queued reservation to settle", () => queued.settled !== undefined, {
      timeoutMs: 5_000,
    })
    const settled = queued.settled!
    if (expected === "served") {
      assert.strictEqual(settled.status, "fulfilled", String((settled as { reason?: unknown }).reason))
      if (settled.status === "fulfilled") {
        const [{ n }] = yield* query(() => settled.value.sql`select 3 as n`)
        assert.strictEqual(n, 3)
        settled.value.release()
      }
    } else {
      if (settled.status === "fulfilled") settled.value.release()
      assert.strictEqual(settled.status, "rejected")
      if (settled.status === "rejected") {
        assert.isTrue(isConnectionLost(settled.reason), String(settled.reason))
      }
    }
    yield* _servesAgain(sql)
  })

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
          assert.isTrue(
            error !== undefined && isConnectionLost((error as { error: unknown }).error),
            String(exit.cause),
          )
        }
        const after = yield* withOwnerTransaction(sql, (tx) => query(() => tx`select 2 as n`))
        assert.strictEqual(after[0].n, 2)
      }),
    30_000,
  )

  it.live(
    "a transaction's handle kept past its end is refused: it never runs in the next holder's transaction",
    () =>
      Effect.gen(function* () {
        const sql = yield* _pool(yield* scratchPostgresUrl, 1) // one connection: the next holder gets it
        const leaked = yield* withOwnerTransaction(sql, (tx) => Effect.succeed(tx))
        const exit = yield* withOwnerTransaction(sql, (tx) =>
          Effect.gen(function* () {
            yield* query(() => tx`select set_config('application_name', 'second holder', true)`)
            // before: run on the connection the pool had handed on, inside this transaction
            return yield* Effect.exit(
              query(() => leaked`select current_setting('application_name') as name`),
            )
          }))
        assert.isTrue(Exit.isFailure(exit), String(exit))
        if (Exit.isFailure(exit)) {
          const error = exit.cause.reasons.find((r) => r._tag === "Fail")
          assert.isTrue(error !== undefined && isConnectionLost((error as { error: unknown }).error))
        }
      }),
    30_000,
  )

  it.live(
    "while Postgres refuses connections statements fail at once, and the pool serves again as soon as it accepts",
    () =>
      Effect.gen(function* () {
        const { proxy, url } = yield* _proxied
        const sql = yield* _pool(url, 3)
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
    "a reservation whose connect is refused fails with the refusal, not as a lost connection",
    () =>
      Effect.gen(function* () {
        const { proxy, url } = yield* _proxied
        const sql = yield* _pool(url, 3) // no connection opened yet: none of them is watched
        yield* Effect.promise(() => proxy.refuse())
        const refused = yield* Effect.flip(query(() => reserveConnection(sql)))
        // before: the close that follows a failed connect failed the reservation a second time, as
        // CONNECTION_CLOSED, and that error won, so the refusal went unseen
        assert.strictEqual(refused.code, "ECONNREFUSED", String(refused))
      }),
    30_000,
  )

  it.live(
    "a connection lost between its reservation and its first statement is known lost: the statement is refused, never written",
    () =>
      Effect.gen(function* () {
        const { proxy, url } = yield* _proxied
        const sql = yield* _pool(url, 1)
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
        yield* _servesAgain(sql)
      }),
    30_000,
  )

  it.live(
    "a reservation queued while the connection it waits for closes is served by its reconnect instead of waiting for ever",
    () =>
      _queuedBehindClose(async (sql) => {
        const held = await reserveConnection(sql)
        const [{ pid }] = await held.sql`select pg_backend_pid() as pid`
        return pid as number
      }, "served"),
    30_000,
  )

  it.live(
    "a reservation queued while a connection no statement of ours ran on closes fails as lost",
    () =>
      _queuedBehindClose(async (sql, admin) => {
        await sql.reserve() // held and never used: nothing tells which connection it is
        const [{ pid }] = await admin`select pid from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid()`
        return pid as number
      }, "lost"),
    30_000,
  )
})
