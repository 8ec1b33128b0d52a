/**
 * A host transaction's `begin` (with its SETs and, for a contended host, the host's write lock) is
 * not awaited: the body's writes and COMMIT go out behind it (src/store/transaction.ts). A `begin`
 * the store refuses aborts the transaction, so nothing is written, and the caller hears the
 * `begin`'s own error, not "current transaction is aborted" from the statements behind it.
 * Postgres only: it takes a second session holding the host's lock.
 */
import { Effect, Exit } from "effect"
import postgres from "postgres"
import { describe, expect, it } from "vitest"
import { query } from "../../src/store/database.ts"
import { makePipeline } from "../../src/store/pipeline.ts"
import { makePostgresClient } from "../../src/store/postgres.ts"
import { createTenantRoleSql, lockHostSql, TENANT_ROLE } from "../../src/store/roles.ts"
import { withHostTransaction } from "../../src/store/transaction.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { checkService } from "../support/services.ts"

const hasPostgres = await checkService("postgres")
const HOST = "begin.pipelined.test"

// skipped only when Postgres is unreachable on a dev machine; .ci/run (HAMLET_REQUIRE_SERVICES=1) fails instead
describe.skipIf(!hasPostgres)("a host transaction whose begin the store refuses", () => {
  it("writes nothing and fails with the begin's error", async () => {
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const url = yield* scratchPostgresUrl
      const admin = postgres(url, { max: 2, onnotice: () => {} })
      yield* Effect.addFinalizer(() => Effect.promise(() => admin.end({ timeout: 1 })))
      yield* Effect.promise(async () => {
        await admin.unsafe(createTenantRoleSql)
        await admin.unsafe(`create table notes (host text, text text)`)
        await admin.unsafe(`grant insert, select on notes to ${TENANT_ROLE}`)
        // the pool's sessions give up on a lock after 200 ms: the host lock taken in `begin` fails
        await admin.unsafe(`alter database ${new URL(url).pathname.slice(1)} set lock_timeout = '200ms'`)
      })
      const holder = yield* Effect.promise(() => admin.reserve())
      yield* Effect.promise(() => holder.unsafe(`begin; ${lockHostSql(HOST)}`).simple())
      const sql = makePostgresClient(url, 2)
      yield* Effect.addFinalizer(() => Effect.promise(() => sql.end({ timeout: 1 })))
      const pipeline = makePipeline()
      const exit = yield* Effect.exit(withHostTransaction(
        sql,
        HOST,
        (tx) => Effect.sync(() => pipeline.send(tx`insert into notes values (${HOST}, 'lost')`)),
        { pipeline, lockHost: true, deadline: Date.now() + 10_000 },
      ))
      yield* Effect.promise(() => holder.unsafe("rollback").simple().then(() => holder.release()))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
      expect(error && "error" in error ? error.error : undefined).toMatchObject({
        code: "55P03", // lock_not_available, the begin's; not 25P02 (in failed transaction) from the insert
      })
      expect(yield* query(() => admin`select count(*)::int as n from notes`)).toEqual([{ n: 0 }])
      // and the pool's connection is usable again: the next transaction on it commits
      const again = makePipeline()
      yield* withHostTransaction(
        sql,
        HOST,
        (tx) => Effect.sync(() => again.send(tx`insert into notes values (${HOST}, 'kept')`)),
        { pipeline: again, deadline: Date.now() + 10_000 },
      )
      expect(yield* query(() => admin`select text from notes`)).toEqual([{ text: "kept" }])
    })))
  }, 30_000)
})
