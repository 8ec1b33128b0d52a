/**
 * Diffs one host's rows between two schemas holding the same models (live vs rebuilt),
 * per model, row by id and column by column. The comparison runs in SQL (a full join on
 * the model's columns as jsonb), so only differing rows cross the wire.
 */
import { Effect } from "effect"
import type { Model } from "../projects/model.ts"
import { canonicalJson } from "../store/event-hash.ts"
import { query, type SqlTx } from "../store/database.ts"
import { quoteIdentifier as q, readColumns, tableName } from "../store/model-ddl.ts"

export interface Drift {
  /** `schema.table` of the live table. */
  readonly table: string
  /** The row's id. */
  readonly key: string
  /** The differing column, or `(row)` when the row exists on one side only. */
  readonly column: string
  /** The live value (`null` for a missing row: see `column`). */
  readonly live: unknown
  readonly rebuilt: unknown
}

export interface DiffReport {
  readonly tables: number
  readonly drifts: ReadonlyArray<Drift>
  /** Drifted cells beyond those kept, so a wrecked table cannot exhaust memory. */
  readonly moreDrifts: number
}

export const MISSING_ROW = "(row)"
const MAX_DRIFTS = 1000

/** The columns compared: the model's, plus deleted_at for soft-delete models. */
export const comparedColumns = (model: Model): ReadonlyArray<string> => readColumns(model).map((c) => c.name)

/** `jsonb_build_object('a', "a", …)` over a model's compared columns (of table `alias`, if given). */
export const rowJsonSql = (model: Model, alias?: string): string =>
  `jsonb_build_object(${
    comparedColumns(model).map((c) => `'${c}', ${alias ? `${alias}.` : ""}${q(c)}`).join(", ")
  })`

const cellDrifts = (
  table: string,
  key: string,
  live: Record<string, unknown> | null,
  rebuilt: Record<string, unknown> | null,
): Array<Drift> => {
  if (live === null || rebuilt === null) return [{ table, key, column: MISSING_ROW, live, rebuilt }]
  const columns = [...new Set([...Object.keys(live), ...Object.keys(rebuilt)])]
  return columns
    .filter((c) => canonicalJson(live[c] ?? null) !== canonicalJson(rebuilt[c] ?? null))
    .map((column) => ({ table, key, column, live: live[column] ?? null, rebuilt: rebuilt[column] ?? null }))
}

/** Every cell where `host`'s rows in `liveSchema` and `rebuiltSchema` disagree. */
export const diffHost = (
  tx: SqlTx,
  models: ReadonlyArray<Model>,
  host: string,
  liveSchema: string,
  rebuiltSchema: string,
) =>
  Effect.gen(function* () {
    const drifts: Array<Drift> = []
    let moreDrifts = 0
    for (const model of models) {
      const rowJson = rowJsonSql(model)
      const text = `select coalesce(l.id, r.id)::text as key, l.row as live, r.row as rebuilt
        from (select id, ${rowJson} as row from ${tableName(liveSchema, model)} where host = $1) l
        full join (select id, ${rowJson} as row from ${tableName(rebuiltSchema, model)} where host = $1) r
          on l.id = r.id
        where l.row is distinct from r.row
        order by 1`
      const table = `${liveSchema}.${model.table}`
      yield* query(async () => {
        for await (const rows of tx.unsafe(text, [host]).cursor(500)) {
          for (const row of rows) {
            for (const drift of cellDrifts(table, String(row.key), row.live, row.rebuilt)) {
              if (drifts.length < MAX_DRIFTS) drifts.push(drift)
              else moreDrifts++
            }
          }
        }
      })
    }
    return { tables: models.length, drifts, moreDrifts } satisfies DiffReport
  })
