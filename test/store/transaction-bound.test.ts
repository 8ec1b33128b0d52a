/**
 * The store's own backstop for a host transaction (transaction-bound.ts): a transaction left
 * idle past its bound — its node gone quiet, its connection never closed — is rolled back by
 * Postgres and its session ended, so its locks do not hold up other nodes. Postgres only: PGlite's
 * WASM backend runs no timers (read-lanes-contract.ts says the same of statement_timeout).
 */
import { Effect, Exit, Scope } from "effect"
import postgres from "postgres"
import { describe, expect, it } from "vitest"
import { storeBackstopSql, transactionBoundMs } from "../../src/store/transaction-bound.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { checkService } from "../support/services.ts"

const hasPostgres = await checkService("postgres")

describe("transactionBoundMs()", () => {
  it("is the time left to the deadline plus a margin, or a generous fixed bound without one", () => {
    expect(transactionBoundMs(11_000, 10_000)).toBe(6_000)
    expect(transactionBoundMs(9_000, 10_000)).toBe(5_000) // a deadline already past: the margin
    expect(transactionBoundMs(undefined, 10_000)).toBe(60_000)
  })
})

// skipped only when Postgres is unreachable on a dev machine; .ci/run (HAMLET_REQUIRE_SERVICES=1) fails instead
describe.skipIf(!hasPostgres)("storeBackstopSql(), on postgres", () => {
  it("makes Postgres end a transaction left idle past the bound, releasing its locks", async () => {
    const scope = Effect.runSync(Scope.make())
    const sql = postgres(await Effect.runPromise(Scope.provide(scratchPostgresUrl, scope)), {
      max: 2,
      onnotice: () => {},
    })
    try {
      await sql`create table locked (id int primary key)`
      await sql`insert into locked values (1)`
      const idle = await sql.reserve()
      // as a host transaction begins: the settings go out with `begin`, in its round trip
      await idle.unsafe(`begin; ${storeBackstopSql(0)}`).simple()
      const [settings] = await idle`select current_setting('idle_in_transaction_session_timeout') as idle,
                                           current_setting('statement_timeout') as statement`
      expect(settings).toEqual({ idle: "2s", statement: "2s" })
      await idle`update locked set id = 2 where id = 1` // a row lock another writer would wait on
      const started = Date.now()
      // never committed, never closed by its client: the other writer gets the row once Postgres
      // has ended the idle transaction (2 s), not never
      await sql`update locked set id = 3 where id = 1`
      expect(Date.now() - started).toBeLessThan(10_000)
      await expect(idle`select 1`).rejects.toThrow() // its session is gone
      expect(await sql`select id from locked`).toEqual([{ id: 3 }]) // its update rolled back
    } finally {
      await sql.end({ timeout: 1 })
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 30_000)
})
