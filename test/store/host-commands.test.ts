/**
 * The record of signed host changes applied (store/host-commands.ts), on the embedded store: a
 * change is newest only against its own project's changes of the host, and the newest `at` wins
 * whatever order the records come in.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Database, type Sql } from "../../src/store/database.ts"
import { isNewestHostCommand, recordHostCommand } from "../../src/store/host-commands.ts"
import { migrateCore } from "../../src/store/migrations.ts"
import { testDatabase } from "../support/database.ts"

const HOST = "shared.example.com"
const AT = 1_750_000_000_000

describe("signed host changes applied", () => {
  const scope = Effect.runSync(Scope.make())
  let sql: Sql
  beforeAll(async () => {
    const context = await Effect.runPromise(Layer.buildWithScope(testDatabase("pglite"), scope))
    sql = (context.mapUnsafe.get(Database.key) as Database["Service"]).sql
    await Effect.runPromise(migrateCore(sql))
  }, 60_000)
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

  const isNewest = (project: string, at: number) =>
    Effect.runPromise(isNewestHostCommand(sql, project, HOST, at))
  const record = (project: string, at: number) => Effect.runPromise(recordHostCommand(sql, project, HOST, at))

  it("one project's changes of a host never hold back another project's", async () => {
    await record("othello", AT + 55_000)
    expect(await isNewest("horatio", AT)).toBe(true)
    expect(await isNewest("othello", AT)).toBe(false)
  })

  it("a change is newest only when later than every one applied; the newest recorded wins", async () => {
    await record("horatio", AT + 2)
    await record("horatio", AT + 1)
    expect(await isNewest("horatio", AT + 2)).toBe(false)
    expect(await isNewest("horatio", AT + 3)).toBe(true)
  })
})
