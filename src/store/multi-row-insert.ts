/**
 * Inserting many rows in one statement — write combining, the replay writer and the event
 * log all do. Normally `insert into <table> (host, …) select $1, … from unnest($2::<type>[], …)`:
 * one array parameter per column, so the text is the same for any number of rows — prepared
 * once per connection and sent without the describe round trip postgres.js spends on an
 * unprepared statement (a VALUES list's text changes with its length). JSON travels as text.
 * A column whose type has no plain array form (an array type, say) gets VALUES lists instead.
 */
import type { SqlTx } from "./database.ts"
import { type Column, placeholder, quoteIdentifier as q } from "./model-ddl.ts"

export interface Statement {
  readonly text: string
  readonly params: Array<unknown>
  /** Whether to prepare it: only a text that repeats (a prepared statement per text lives on). */
  readonly prepare: boolean
}

/** Parameters per statement at most (Postgres allows 65,535). */
const MAX_PARAMS = 60_000
const JSON_TYPE = /^jsonb?$/i
/** A plain type name (`text`, `double precision`, `numeric(10,2)`): `<type>[]` is its array type. */
const SCALAR_TYPE = /^[a-z_][a-z0-9_]*( [a-z_][a-z0-9_]*)*( ?\(\s*\d+\s*(,\s*\d+\s*)?\))?$/i
const NOT_A_TYPE = /\b(not|null|default|references|check|unique|primary|collate|generated|constraint)\b/i

interface UnnestForm {
  /** The array parameter's type. */
  readonly array: string
  /** Applied to the unnested value. */
  readonly cast: string
  /** JSON values are sent as their text. */
  readonly isJsonText: boolean
}

/** Columns are built once per model: their forms are worked out once too. */
const forms = new WeakMap<Column, UnnestForm | null>()

/** How a column travels in an unnest insert: as an array of its own type, or JSON as text; else not. */
export const unnestAs = (column: Column): UnnestForm | undefined => {
  let form = forms.get(column)
  if (form === undefined) {
    const type = column.type.trim()
    form = column.isJson || JSON_TYPE.test(type)
      ? { array: "text[]", cast: `::${type}`, isJsonText: true }
      : SCALAR_TYPE.test(type) && !NOT_A_TYPE.test(type)
      ? { array: `${type}[]`, cast: "", isJsonText: false }
      : null
    forms.set(column, form)
  }
  return form ?? undefined
}

/** Rows of one host for one table. */
export interface RowsInsert {
  readonly table: string
  readonly host: string
  readonly columns: ReadonlyArray<Column>
  /** Values in `columns` order, host excluded. */
  readonly rows: ReadonlyArray<ReadonlyArray<unknown>>
  /** After the rows: an on-conflict clause, say. */
  readonly suffix?: string
}

/** The rows as one unnest insert; undefined when a column has no array form. */
export const unnestInsert = (
  tx: SqlTx,
  { table, host, columns, rows, suffix = "" }: RowsInsert,
): Statement | undefined => {
  const columnForms = columns.map(unnestAs)
  if (!columnForms.every((f) => f !== undefined)) return undefined
  const names = columns.map((c) => q(c.name))
  const params: Array<unknown> = [host]
  columnForms.forEach((form, i) => {
    const values = rows.map((row) => row[i] ?? null)
    // type 0: Postgres names the array type (postgres.js would guess a scalar type from a Date)
    params.push(
      tx.typed(form.isJsonText ? values.map((v) => v === null ? null : JSON.stringify(v)) : values, 0),
    )
  })
  const selected = columnForms.map((f, i) => `u.${names[i]}${f.cast}`)
  const arrays = columnForms.map((f, i) => `$${i + 2}::${f.array}`)
  return {
    text: `insert into ${table} (host, ${names.join(", ")}) select $1, ${selected.join(", ")} from unnest(${
      arrays.join(", ")
    }) as u(${names.join(", ")})${suffix}`,
    params,
    prepare: true,
  }
}

/** The rows as one unnest insert, or as VALUES lists when they cannot be one. */
export const multiRowInserts = (tx: SqlTx, insert: RowsInsert): Array<Statement> => {
  const unnested = unnestInsert(tx, insert)
  if (unnested) return [unnested]
  const { table, host, columns, rows, suffix = "" } = insert
  const names = columns.map((c) => q(c.name)).join(", ")
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / (columns.length + 1)))
  const statements: Array<Statement> = []
  for (let start = 0; start < rows.length; start += perStatement) {
    const params: Array<unknown> = [host]
    const chunk = rows.slice(start, start + perStatement)
    const tuples = chunk.map((values) =>
      `($1, ${columns.map((c, i) => placeholder(c, params.push(values[i] ?? null))).join(", ")})`
    )
    statements.push({
      text: `insert into ${table} (host, ${names}) values ${tuples.join(", ")}${suffix}`,
      params,
      prepare: chunk.length === 1,
    })
  }
  return statements
}
