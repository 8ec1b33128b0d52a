/**
 * Handlers run as hamlet_tenant (`set local role`), so the role Hamlet connects as must be a member
 * of it. A superuser is one implicitly; a database owner that is not (a managed Postgres' main
 * user: CREATEROLE, CREATEDB, no superuser) is made one at start, or every handler would fail with
 * "permission denied to set role".
 */
import { Effect } from "effect"
import postgres from "postgres"
import { describe, expect, it } from "vitest"
import { migrateCore } from "../../src/store/migrations.ts"
import { enterHostSql } from "../../src/store/roles.ts"
import { checkService, DATABASE_URL, uniqueSuffix } from "../support/services.ts"

const available = await checkService("postgres")

describe.skipIf(!available)("tenant role", () => {
  it("a non-superuser owning the database can enter the tenant role once Hamlet has started on it", async () => {
    const name = `hamlet_test_owner_${uniqueSuffix()}`
    const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} })
    await admin.unsafe(`create role ${name} login createrole createdb`)
    await admin.unsafe(`create database ${name} owner ${name}`)
    const url = new URL(DATABASE_URL)
    url.pathname = `/${name}`
    url.username = name
    const sql = postgres(url.toString(), { max: 1, onnotice: () => {} })
    try {
      await Effect.runPromise(migrateCore(sql))
      const entered = await sql.begin(async (tx) => {
        await tx.unsafe(enterHostSql("owner.example.com"))
        return (await tx`select current_user as role, current_setting('hamlet.host') as host`)[0]
      })
      expect(entered).toEqual({ role: "hamlet_tenant", host: "owner.example.com" })
    } finally {
      await sql.end()
      await admin.unsafe(`drop database if exists ${name} with (force)`)
      await admin.unsafe(`drop role if exists ${name}`)
      await admin.end()
    }
  })
})
