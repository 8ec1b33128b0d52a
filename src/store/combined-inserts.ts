/**
 * Write combining for pipelined projection writes: plain inserts into one table are queued
 * and sent as one multi-row statement when something else touches that table, when anything
 * reads, or at the batch's end. A command batch of 32 new items then costs one insert per
 * table instead of 32. Counters (`incrementOrInsert` whose new row starts at the amount added)
 * combine too, summed per id: 32 items under one tag update the tag's row once. Statements on
 * different tables commute (managed tables have no triggers or foreign keys); statements on
 * one table keep their order.
 */
import type { Pipeline } from "./pipeline.ts"
import type { SqlTx } from "./database.ts"
import { type Column, placeholder, quoteIdentifier as q } from "./model-ddl.ts"

interface Queued {
  readonly columns: ReadonlyArray<Column>
  /** Plain inserts: every row; counters: one row per id, its counter the sum so far. */
  readonly rows: Array<Array<unknown>>
  /** Counters only: the queued row of each id, and the counter's place in the row. */
  readonly counter?: { readonly index: number; readonly byId: Map<unknown, Array<unknown>> }
}

export interface CombinedInserts {
  /** Queues a row for `table` (values in `columns` order, host excluded). */
  readonly add: (table: string, columns: ReadonlyArray<Column>, values: ReadonlyArray<unknown>) => void
  /**
   * Queues a counter: insert the row, or add its `counter` value to the stored one (the
   * row's value is the amount: a new row starts at what one call adds). Values must
   * include `id`.
   */
  readonly addCount: (
    table: string,
    columns: ReadonlyArray<Column>,
    values: ReadonlyArray<unknown>,
    counter: string,
  ) => void
  /** Sends what is queued for `table` (before another statement on it). */
  readonly flushTable: (table: string) => void
  /** Sends everything queued (before a read, and before commit). */
  readonly flushAll: () => void
}

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

/** How a column travels in an unnest insert: as an array of its own type, or JSON as text; else not. */
const unnestAs = (column: Column): UnnestForm | undefined => {
  const type = column.type.trim()
  if (column.isJson || JSON_TYPE.test(type)) return { array: "text[]", cast: `::${type}`, isJsonText: true }
  if (SCALAR_TYPE.test(type) && !NOT_A_TYPE.test(type)) {
    return { array: `${type}[]`, cast: "", isJsonText: false }
  }
  return undefined
}

/**
 * The insert of `rows` (values in `columns` order, host excluded) into `table`; `suffix`
 * follows (an on-conflict clause). Shared by write combining and the replay writer.
 *
 * Normally one `insert into <table> (host, …) select $1, … from unnest($2::<type>[], …)`: one
 * array parameter per column, so the text is the same for any number of rows — prepared once
 * per connection and sent without the describe round trip postgres.js spends on an
 * unprepared statement (a VALUES list's text changes with its length). JSON travels as text.
 * A column whose type has no plain array form (an array type, say) gets VALUES lists instead.
 */
export const multiRowInserts = (
  tx: SqlTx,
  table: string,
  host: string,
  columns: ReadonlyArray<Column>,
  rows: ReadonlyArray<ReadonlyArray<unknown>>,
  suffix = "",
): Array<Statement> => {
  const names = columns.map((c) => q(c.name))
  const forms = columns.map(unnestAs)
  if (forms.every((f) => f !== undefined)) {
    const params: Array<unknown> = [host]
    forms.forEach((form, i) => {
      const values = rows.map((row) => row[i] ?? null)
      // type 0: Postgres names the array type (postgres.js would guess a scalar type from a Date)
      params.push(
        tx.typed(form.isJsonText ? values.map((v) => v === null ? null : JSON.stringify(v)) : values, 0),
      )
    })
    const selected = forms.map((f, i) => `u.${names[i]}${f.cast}`)
    const arrays = forms.map((f, i) => `$${i + 2}::${f.array}`)
    return [{
      text: `insert into ${table} (host, ${names.join(", ")}) select $1, ${selected.join(", ")} from unnest(${
        arrays.join(", ")
      }) as u(${names.join(", ")})${suffix}`,
      params,
      prepare: true,
    }]
  }
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / (columns.length + 1)))
  const statements: Array<Statement> = []
  for (let start = 0; start < rows.length; start += perStatement) {
    const params: Array<unknown> = [host]
    const chunk = rows.slice(start, start + perStatement)
    const tuples = chunk.map((values) =>
      `($1, ${columns.map((c, i) => placeholder(c, params.push(values[i] ?? null))).join(", ")})`
    )
    statements.push({
      text: `insert into ${table} (host, ${names.join(", ")}) values ${tuples.join(", ")}${suffix}`,
      params,
      prepare: chunk.length === 1,
    })
  }
  return statements
}

const sameColumns = (a: ReadonlyArray<Column>, b: ReadonlyArray<Column>) =>
  a.length === b.length && a.every((c, i) => c.name === b[i].name)

/** `on conflict` for a counter: the stored value plus the queued sum. */
const addOnConflict = (column: Column) =>
  ` on conflict (host, id) do update set ${q(column.name)} = coalesce(t.${q(column.name)}, 0) + excluded.${
    q(column.name)
  }`

export const makeCombinedInserts = (tx: SqlTx, host: string, pipeline: Pipeline): CombinedInserts => {
  const queued = new Map<string, Queued>()

  const send = (table: string, { columns, rows, counter }: Queued) => {
    const statements = counter
      ? multiRowInserts(tx, `${table} as t`, host, columns, rows, addOnConflict(columns[counter.index]))
      : multiRowInserts(tx, table, host, columns, rows)
    for (const { text, params, prepare } of statements) {
      // deno-lint-ignore no-explicit-any -- postgres.js types parameters as its own serializable union
      pipeline.send(tx.unsafe(text, params as any, { prepare }))
    }
  }

  const flushTable = (table: string) => {
    const entry = queued.get(table)
    if (!entry) return
    queued.delete(table)
    send(table, entry)
  }

  /** The table's queue if it holds the same kind of rows; else what it held is sent first. */
  const queueFor = (table: string, columns: ReadonlyArray<Column>, counterIndex?: number): Queued => {
    const entry = queued.get(table)
    if (entry && sameColumns(entry.columns, columns) && entry.counter?.index === counterIndex) return entry
    flushTable(table)
    const fresh: Queued = {
      columns,
      rows: [],
      counter: counterIndex === undefined ? undefined : { index: counterIndex, byId: new Map() },
    }
    queued.set(table, fresh)
    return fresh
  }

  return {
    add: (table, columns, values) => void queueFor(table, columns).rows.push([...values]),
    addCount: (table, columns, values, counter) => {
      const index = columns.findIndex((c) => c.name === counter)
      const { rows, counter: counts } = queueFor(table, columns, index)
      const id = values[columns.findIndex((c) => c.name === "id")]
      const row = counts!.byId.get(id)
      if (row) {
        // the id's later calls only add (the row exists once the first one ran)
        row[index] = Number(row[index]) + Number(values[index])
        return
      }
      const fresh = [...values]
      counts!.byId.set(id, fresh)
      rows.push(fresh)
    },
    flushTable,
    flushAll: () => {
      for (const table of [...queued.keys()]) flushTable(table)
    },
  }
}
