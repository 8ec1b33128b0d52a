/**
 * Reads one host's rows of a model table (live or scratch) as plain JSON objects in id
 * order, through a cursor, so `--at` can print any table size and tests can compare states.
 */
import type { Model } from "../projects/model.ts"
import type { SqlTx } from "../store/database.ts"
import { tableName } from "../store/model-ddl.ts"
import { rowJsonSql } from "./diff.ts"

export type TableRow = Readonly<Record<string, unknown>>

export async function* tableRows(
  tx: SqlTx,
  schema: string,
  model: Model,
  host: string,
): AsyncGenerator<ReadonlyArray<TableRow>> {
  const text = `select ${rowJsonSql(model)} as row from ${
    tableName(schema, model)
  } where host = $1 order by id`
  for await (const rows of tx.unsafe(text, [host]).cursor(500)) {
    yield rows.map((r) => r.row as TableRow)
  }
}
