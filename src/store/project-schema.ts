/**
 * A project's read tables live in a Postgres schema named after the project, so two
 * projects may both declare `post` without meeting. Idempotent; run at start, and skipped
 * while the same DDL already ran and what it made is unchanged (migrations.ts `migrateSchema`).
 */
import type { Effect } from "effect"
import type { Model } from "../projects/model.ts"
import type { DatabaseError, Sql } from "./database.ts"
import { migrateSchema } from "./migrations.ts"
import { modelDdl, quoteIdentifier } from "./model-ddl.ts"
import { TENANT_ROLE } from "./roles.ts"

/** DDL for a schema holding `models`: live schemas get RLS and grants, scratch ones not. */
export const schemaDdl = (
  schema: string,
  models: ReadonlyArray<Model>,
  options: { readonly withSecurity: boolean },
): string =>
  [
    `create schema if not exists ${quoteIdentifier(schema)}`,
    ...(options.withSecurity ? [`grant usage on schema ${quoteIdentifier(schema)} to ${TENANT_ROLE}`] : []),
    ...models.map((m) => modelDdl(schema, m, options)),
  ].join(";\n")

export const migrateProject = (
  sql: Sql,
  project: string,
  models: ReadonlyArray<Model>,
): Effect.Effect<void, DatabaseError> =>
  migrateSchema(sql, schemaDdl(project, models, { withSecurity: true }), { schema: project })
