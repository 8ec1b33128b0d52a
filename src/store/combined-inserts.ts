/**
 * Write combining for pipelined projection writes: plain inserts into one table are queued
 * and sent as one multi-row statement when something else touches that table, when anything
 * reads, or at the batch's end. A command batch of 32 new items then costs one insert per
 * table instead of 32. Statements on different tables commute (managed tables have no
 * triggers or foreign keys); statements on one table keep their order.
 */
import type { Pipeline } from "./pipeline.ts"
import type { SqlTx } from "./database.ts"
import { type Column, placeholder, quoteIdentifier as q } from "./model-ddl.ts"

/** Parameters per statement at most (Postgres allows 65,535). */
const MAX_PARAMS = 60_000

interface Queued {
  readonly columns: ReadonlyArray<Column>
  readonly rows: Array<ReadonlyArray<unknown>>
}

export interface CombinedInserts {
  /** Queues a row for `table` (values in `columns` order, host excluded). */
  readonly add: (table: string, columns: ReadonlyArray<Column>, values: ReadonlyArray<unknown>) => void
  /** Sends what is queued for `table` (before another statement on it). */
  readonly flushTable: (table: string) => void
  /** Sends everything queued (before a read, and before commit). */
  readonly flushAll: () => void
}

export interface Statement {
  readonly text: string
  readonly params: Array<unknown>
}

/**
 * `insert into <table> (host, …) values ($1, …), …` for `rows` (values in `columns` order,
 * host excluded), split so no statement passes MAX_PARAMS; `suffix` follows each values list
 * (an on-conflict clause). Shared by write combining and the replay writer.
 */
export const multiRowInserts = (
  table: string,
  host: string,
  columns: ReadonlyArray<Column>,
  rows: ReadonlyArray<ReadonlyArray<unknown>>,
  suffix = "",
): Array<Statement> => {
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / (columns.length + 1)))
  const names = columns.map((c) => q(c.name)).join(", ")
  const statements: Array<Statement> = []
  for (let start = 0; start < rows.length; start += perStatement) {
    const params: Array<unknown> = [host]
    const tuples = rows.slice(start, start + perStatement).map((values) =>
      `($1, ${columns.map((c, i) => placeholder(c, params.push(values[i]))).join(", ")})`
    )
    statements.push({
      text: `insert into ${table} (host, ${names}) values ${tuples.join(", ")}${suffix}`,
      params,
    })
  }
  return statements
}

const sameColumns = (a: ReadonlyArray<Column>, b: ReadonlyArray<Column>) =>
  a.length === b.length && a.every((c, i) => c.name === b[i].name)

export const makeCombinedInserts = (tx: SqlTx, host: string, pipeline: Pipeline): CombinedInserts => {
  const queued = new Map<string, Queued>()

  const send = (table: string, { columns, rows }: Queued) => {
    for (const { text, params } of multiRowInserts(table, host, columns, rows)) {
      // a single row is the common statement: prepared; multi-row texts vary with the count
      // deno-lint-ignore no-explicit-any -- postgres.js types parameters as its own serializable union
      pipeline.send(tx.unsafe(text, params as any, { prepare: rows.length === 1 }).execute())
    }
  }

  const flushTable = (table: string) => {
    const entry = queued.get(table)
    if (!entry) return
    queued.delete(table)
    send(table, entry)
  }

  return {
    add: (table, columns, values) => {
      const entry = queued.get(table)
      if (entry && sameColumns(entry.columns, columns)) {
        entry.rows.push(values)
        return
      }
      flushTable(table)
      queued.set(table, { columns, rows: [values] })
    },
    flushTable,
    flushAll: () => {
      for (const table of [...queued.keys()]) flushTable(table)
    },
  }
}
