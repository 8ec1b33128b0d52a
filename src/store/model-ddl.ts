/**
 * Derives a model's table from its Schema: `host text not null` first, the model's
 * columns, optional `deleted_at`, primary key (host, id) (it also serves lookups by host),
 * row-level security keyed on `hamlet.host`. The DDL is idempotent; new fields become new
 * columns.
 */
import { SchemaAST } from "effect"
import type { Model } from "../projects/model.ts"
import { TENANT_ROLE } from "./roles.ts"

export interface Column {
  readonly name: string
  readonly type: string
  readonly isNullable: boolean
  /** Stored as jsonb: the value is passed through sql.json. */
  readonly isJson: boolean
}

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`

const nonNullMembers = (ast: SchemaAST.AST): ReadonlyArray<SchemaAST.AST> =>
  ast._tag === "Union" ? ast.types.filter((t) => t._tag !== "Null" && t._tag !== "Undefined") : [ast]

const sqlTypeOf = (ast: SchemaAST.AST): string => {
  const members = nonNullMembers(SchemaAST.toEncoded(ast))
  const tags = new Set(members.map((m) => m._tag === "Literal" ? typeof m.literal : m._tag))
  if (tags.size !== 1) return "jsonb"
  const [tag] = tags
  if (tag === "String" || tag === "string" || tag === "TemplateLiteral") return "text"
  if (tag === "Number" || tag === "number") return "double precision"
  if (tag === "Boolean" || tag === "boolean") return "boolean"
  return "jsonb"
}

const isNullable = (ast: SchemaAST.AST): boolean => {
  const encoded = SchemaAST.toEncoded(ast)
  return SchemaAST.isOptional(ast) ||
    (encoded._tag === "Union" && encoded.types.some((t) => t._tag === "Null" || t._tag === "Undefined"))
}

/** The columns of a model, in declaration order, without `host` and `deleted_at`. */
export const modelColumns = (model: Model): ReadonlyArray<Column> =>
  model.schema.ast.propertySignatures.map((ps) => {
    const name = String(ps.name)
    const type = model.options.columns?.[name] ?? sqlTypeOf(ps.type)
    return { name, type, isNullable: isNullable(ps.type), isJson: type === "jsonb" }
  })

/** The soft-delete marker: not a model field, but a column of soft-delete models' tables. */
export const DELETED_AT: Column = { name: "deleted_at", type: "timestamptz", isNullable: true, isJson: false }

/** The columns a read returns and an audit compares: the model's, and `deleted_at` with soft delete. */
export const readColumns = (model: Model): ReadonlyArray<Column> =>
  model.options.softDelete ? [...modelColumns(model), DELETED_AT] : modelColumns(model)

const TIMESTAMP_TYPES = new Set(["timestamptz", "timestamp with time zone"])
export const isTimestamp = (column: Column): boolean => TIMESTAMP_TYPES.has(column.type.toLowerCase())

/** Qualified, quoted table name in a schema (a project's, or an audit scratch schema). */
export const tableName = (schema: string, model: Model): string => `${quote(schema)}.${quote(model.table)}`

/** Idempotent DDL for one model table in `schema`. */
export const modelDdl = (
  schema: string,
  model: Model,
  options: { readonly withSecurity: boolean },
): string => {
  const table = tableName(schema, model)
  const columns = modelColumns(model)
  const columnDefs = columns.map((c) => `${quote(c.name)} ${c.type}${c.isNullable ? "" : " not null"}`)
  const softDelete = model.options.softDelete ? [`deleted_at timestamptz`] : []
  const statements = [
    `create table if not exists ${table} (host text not null, ${
      [...columnDefs, ...softDelete].join(", ")
    }, primary key (host, id))`,
    ...columns.map((c) => `alter table ${table} add column if not exists ${quote(c.name)} ${c.type}`),
    ...softDelete.map((d) => `alter table ${table} add column if not exists ${d}`),
    // the primary key (host, id) serves every lookup by host: a separate index on host only
    // cost each insert (and earlier versions made one)
    `drop index if exists ${quote(schema)}.${quote(`${model.table}_host_idx`)}`,
    ...(model.options.indexes ?? []).map((cols) =>
      `create index if not exists ${quote(`${model.table}_${cols.join("_")}_idx`)} on ${table} (host, ${
        cols.map(quote).join(", ")
      })`
    ),
  ]
  if (options.withSecurity) {
    statements.push(
      `alter table ${table} enable row level security`,
      `drop policy if exists host_isolation on ${table}`,
      `create policy host_isolation on ${table} using (host = current_setting('hamlet.host', true)) with check (host = current_setting('hamlet.host', true))`,
      `grant select, insert, update, delete on ${table} to ${TENANT_ROLE}`,
    )
  }
  return statements.join(";\n")
}

export { quote as quoteIdentifier }

/** A parameter's placeholder; jsonb columns get a cast so postgres.js sends JSON text. */
export const placeholder = (column: Column, index: number): string =>
  column.isJson ? `$${index}::jsonb` : `$${index}`
