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
import { type Column, quoteIdentifier as q } from "./model-ddl.ts"
import { multiRowInserts } from "./multi-row-insert.ts"

interface Queued {
  readonly columns: ReadonlyArray<Column>
  /** Plain inserts: every row; counters: one row per id, its counter the sum so far. */
  readonly rows: Array<Array<unknown>>
  /** Counters only: the queued row of each id, and the counter's place in the row. */
  readonly counter?: { readonly index: number; readonly byId: Map<unknown, Array<unknown>> }
}

export interface CombinedInserts {
  /** Queues a row for `table` (values in `columns` order, host excluded; the array is kept, not copied). */
  readonly add: (table: string, columns: ReadonlyArray<Column>, values: Array<unknown>) => void
  /**
   * Queues a counter: insert the row, or add its `counter` value to the stored one (the
   * row's value is the amount: a new row starts at what one call adds). Values must
   * include `id`.
   */
  readonly addCount: (
    table: string,
    columns: ReadonlyArray<Column>,
    values: Array<unknown>,
    counter: string,
  ) => void
  /** Sends what is queued for `table` (before another statement on it). */
  readonly flushTable: (table: string) => void
  /** Sends everything queued (before a read, and before commit). */
  readonly flushAll: () => void
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
      ? multiRowInserts(tx, {
        table: `${table} as t`,
        host,
        columns,
        rows,
        suffix: addOnConflict(columns[counter.index]),
      })
      : multiRowInserts(tx, { table, host, columns, rows })
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
    add: (table, columns, values) => void queueFor(table, columns).rows.push(values),
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
      counts!.byId.set(id, values)
      rows.push(values)
    },
    flushTable,
    flushAll: () => {
      for (const table of [...queued.keys()]) flushTable(table)
    },
  }
}
