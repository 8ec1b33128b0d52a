/**
 * Scratch schemas for rebuilds: `hamlet_audit_<random>`, holding a project's read tables
 * built by the same DDL as the live ones (without RLS and grants: only the auditing owner
 * touches them). Created inside the audit transaction, so a crash or rollback leaves none.
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import type { Model } from "../projects/model.ts"
import { query, type SqlTx } from "../store/database.ts"
import { quoteIdentifier } from "../store/model-ddl.ts"
import { schemaDdl } from "../store/project-schema.ts"

export const SCRATCH_PREFIX = "hamlet_audit_"

export const scratchSchemaName = (): string => `${SCRATCH_PREFIX}${randomBytes(6).toString("hex")}`

/** Creates a fresh scratch schema with `models`' tables in `tx`; returns its name. */
export const createScratchSchema = (tx: SqlTx, models: ReadonlyArray<Model>) =>
  Effect.gen(function* () {
    const schema = scratchSchemaName()
    yield* query(() => tx.unsafe(schemaDdl(schema, models, { withSecurity: false })).simple())
    return schema
  })

export const dropScratchSchema = (tx: SqlTx, schema: string) =>
  query(() => tx.unsafe(`drop schema if exists ${quoteIdentifier(schema)} cascade`)).pipe(Effect.asVoid)
