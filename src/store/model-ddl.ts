/**
 * Derives a model's table from its Schema: `host text not null` first, the model's
 * columns, optional `deleted_at`, primary key (host, id) (it also serves lookups by host),
 * row-level security keyed on `hamlet.host`. The DDL is idempotent and never drops data: new
 * fields become new columns; a column whose field was removed or made nullable loses its
 * `not null`; a field whose type changed fails the migration (nothing is converted silently).
 */
import { SchemaAST } from "effect"
import { formerHostIndexOf, indexNameOf, type Model } from "../projects/model.ts"
import { isDateField, isNullish, timeKindOf, unionMembers } from "../projects/model-fields.ts"
import { TENANT_ROLE } from "./roles.ts"

export interface Column {
  readonly name: string
  readonly type: string
  readonly isNullable: boolean
  /** Stored as jsonb: the value is passed through sql.json. */
  readonly isJson: boolean
}

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`

/** A union's members, nested unions flattened: `optional(NullOr(String))` is (String | Null) | Undefined. */
const nonNullMembers = (ast: SchemaAST.AST): ReadonlyArray<SchemaAST.AST> =>
  unionMembers(ast).filter((t) => !isNullish(t))

const sqlTypeOf = (ast: SchemaAST.AST): string => {
  if (isDateField(ast)) return "timestamptz" // read back as a Date (model-rows.ts)
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
  return SchemaAST.isOptional(ast) || unionMembers(SchemaAST.toEncoded(ast)).some(isNullish)
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

export const isTimestamp = (column: Column): boolean => timeKindOf(column.type) === "timestamptz"

/** Qualified, quoted table name in a schema (a project's, or an audit scratch schema). */
export const tableName = (schema: string, model: Model): string => `${quote(schema)}.${quote(model.table)}`

const literal = (text: string) => `'${text.replaceAll("'", "''")}'`

/**
 * A table made by an earlier version of the model, brought in line without touching its data
 * (a DO block: which columns the table has is known only to the catalog, under the migration lock).
 * A column whose field changed type fails the migration, naming both types: `add column if not
 * exists` would keep the old one and the values would read back as it says. A column not null that
 * the model no longer requires (its field made nullable, or removed: the column and its data stay)
 * drops `not null`, which every insert would otherwise break on. `host` and `id` (the key) keep theirs.
 * Types compare as Postgres resolves them (`timestamptz` is `timestamp with time zone`), typmods aside.
 */
const _reconcileExisting = (table: string, model: Model): string => {
  const declared = readColumns(model).map((c) => `(${literal(c.name)}, ${literal(c.type)})`).join(", ")
  const required = ["host", "id", ...modelColumns(model).filter((c) => !c.isNullable).map((c) => c.name)]
  const relation = `${literal(table)}::regclass`
  return `do $hamlet$
declare
  mismatches text;
  loose record;
begin
  select string_agg(format('column %s."%s" is %s, the model now says %s', ${literal(table)}, a.attname,
      format_type(a.atttypid, a.atttypmod), m.type), '; ' order by a.attnum)
    into mismatches
    from (values ${declared}) as m(name, type)
    join pg_attribute a on a.attrelid = ${relation} and a.attname = m.name and a.attnum > 0 and not a.attisdropped
    where a.atttypid <> m.type::regtype;
  if mismatches is not null then
    -- all in the message: it is what a failed start reports
    raise exception 'model ${model.table}: %. Hamlet does not convert a column''s data: give the field a new name (a new column), or alter the column by hand (alter table ... alter column ... type ... using ...) and start again', mismatches
      using errcode = 'datatype_mismatch';
  end if;
  for loose in
    select a.attname from pg_attribute a
      where a.attrelid = ${relation} and a.attnum > 0 and not a.attisdropped and a.attnotnull
        and a.attname <> all (array[${required.map(literal).join(", ")}]::text[])
  loop
    execute format('alter table %s alter column %I drop not null', ${literal(table)}, loose.attname);
  end loop;
end
$hamlet$`
}

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
    _reconcileExisting(table, model),
    ...columns.map((c) => `alter table ${table} add column if not exists ${quote(c.name)} ${c.type}`),
    ...softDelete.map((d) => `alter table ${table} add column if not exists ${d}`),
    // the primary key (host, id) serves every lookup by host: a separate index on host only
    // cost each insert (and earlier versions made one)
    `drop index if exists ${quote(schema)}.${quote(formerHostIndexOf(model.table))}`,
    ...(model.options.indexes ?? []).map((cols) =>
      `create index if not exists ${quote(indexNameOf(model.table, cols))} on ${table} (host, ${
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
