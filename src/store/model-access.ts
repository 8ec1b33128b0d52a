/**
 * Host-scoped reads and writes on model tables, for handlers (reads) and projections
 * (reads + writes). Every statement is bound to one host and one schema (a project's live
 * schema, or an audit scratch schema), so the same projection code serves both.
 */
import { Effect } from "effect"
import type { HostReader, ListOptions, SystemProjectionWriter } from "../projects/access.ts"
import type { Model } from "../projects/model.ts"
import { type DatabaseError, query, type SqlTx } from "./database.ts"
import type { Pipeline } from "./pipeline.ts"
import type { ReadLanes } from "./read-lanes.ts"
import { makeCombinedInserts } from "./combined-inserts.ts"
import { purgeStatement } from "./purge-rows.ts"
import { jsonListQuery, jsonObjectOf, parseJsonRows, timeTextOf } from "./json-rows.ts"
import { asModelRows } from "./model-rows.ts"
import {
  type Column,
  DELETED_AT,
  isTimestamp,
  modelColumns,
  placeholder,
  quoteIdentifier as q,
  readColumns,
  tableName,
} from "./model-ddl.ts"

type Row = Record<string, unknown>

const columnsCache = new WeakMap<Model, ReadonlyMap<string, Column>>()
const columnsOf = (model: Model): ReadonlyMap<string, Column> => {
  let columns = columnsCache.get(model)
  if (!columns) {
    columns = new Map(modelColumns(model).map((c) => [c.name, c]))
    columnsCache.set(model, columns)
  }
  return columns
}

export const columnOf = (model: Model, name: string): Column => {
  const column = columnsOf(model).get(name)
  if (!column) throw new Error(`model ${model.table} has no column "${name}"`)
  return column
}

/**
 * A value as a parameter; postgres.js serialises jsonb parameters itself (typed by the `::jsonb`
 * cast). Values it could not serialise (an invalid date for a timestamp, a cyclic object for
 * json) are refused here, with the column's name: postgres.js would throw while writing the
 * statement behind others in flight and leave the connection's replies out of step.
 */
const param = (column: Column, value: unknown): unknown => {
  if (value === undefined || value === null) return null
  if (isTimestamp(column) && Number.isNaN(new Date(value as string).getTime())) {
    throw new RangeError(`${column.name}: ${JSON.stringify(String(value))} is not a timestamp`)
  }
  if (column.isJson) JSON.stringify(value) // throws on a cycle or a bigint
  return value
}

const selectListCache = new WeakMap<Model, string>()
/**
 * The columns a read returns: the model's (no `host`) and `deleted_at`, dates and timestamps
 * already rendered as text by Postgres (timeTextOf), so rows need no conversion in JavaScript.
 */
export const selectList = (model: Model): string => {
  let list = selectListCache.get(model)
  if (!list) {
    list = readColumns(model).map((c) => {
      const text = timeTextOf(c, q(c.name))
      return text ? `${text} as ${q(c.name)}` : q(c.name)
    }).join(", ")
    selectListCache.set(model, list)
  }
  return list
}

interface Where {
  readonly text: string
  readonly params: Array<unknown>
}

export const whereClause = (
  model: Model,
  host: string,
  where: Row | undefined,
  includeDeleted: boolean,
): Where => {
  const params: Array<unknown> = [host]
  const parts = ["host = $1"]
  for (const [name, value] of Object.entries(where ?? {})) {
    const column = columnOf(model, name)
    if (value === null) {
      parts.push(`${q(name)} is null`)
    } else {
      params.push(param(column, value))
      parts.push(`${q(name)} = ${placeholder(column, params.length)}`)
    }
  }
  if (model.options.softDelete && !includeDeleted) parts.push("deleted_at is null")
  return { text: parts.join(" and "), params }
}

export const run = (
  tx: SqlTx,
  text: string,
  params: ReadonlyArray<unknown>,
): Effect.Effect<Array<Row>, DatabaseError> =>
  // deno-lint-ignore no-explicit-any -- postgres.js types parameters as its own serializable union
  query(() => tx.unsafe(text, params as any, { prepare: true }) as unknown as Promise<Array<Row>>)

const parseJson = (model: Model) => (rows: ReadonlyArray<Row>): unknown => {
  const text = rows[0]?.j
  return typeof text === "string" ? parseJsonRows(model, text) : undefined
}

/** Runs one read statement: in a transaction, or on read lanes (read-lanes.ts). */
export type ReadStatement = (
  text: string,
  params: ReadonlyArray<unknown>,
) => Effect.Effect<Array<Row>, DatabaseError>

/** Reads inside `tx`: they see its earlier writes. */
export const readsIn = (tx: SqlTx): ReadStatement => (text, params) => run(tx, text, params)

/**
 * Reads of `host` on the node's read lanes: read-only, pipelined with every host's reads. With
 * a `deadline` (epoch ms: when the handler's caller stops waiting), Postgres cancels a read still
 * running then, so a handler that timed out does not hold a lane.
 */
/**
 * What is left until `deadline`, rounded up to a whole second: reads of one host in a lane's
 * turn share their binding (host and limit) unless the limit differs, so a limit that changed
 * every millisecond would cost a binding statement per read.
 */
const _readLimitMs = (deadline: number): number =>
  Math.max(1, Math.ceil((deadline - Date.now()) / 1_000)) * 1_000

export const readsOnLanes =
  (lanes: ReadLanes, host: string, deadline?: number): ReadStatement => (text, params) =>
    query(() =>
      lanes.run(
        host,
        text,
        params,
        deadline === undefined ? undefined : { timeoutMs: _readLimitMs(deadline) },
      )
    )

/**
 * A limit or offset as the integer Postgres takes: floored, at least 0, at most 2^53 - 1 (within
 * int8, and exact as a JS number: 1e30 went out as "1e+30", which int8 refuses).
 */
const rowCount = (n: number): number => Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.floor(n)))

export const makeHostReader = (read: ReadStatement, schema: string, host: string): HostReader => ({
  get: (model, id, options) => {
    const where = whereClause(model, host, { id }, options?.includeDeleted ?? false)
    const object = jsonObjectOf(model)
    if (object) {
      const text = `select ${object}::text as j from ${
        tableName(schema, model)
      } as t where ${where.text} limit 1`
      return read(text, where.params).pipe(Effect.map(parseJson(model))) as never
    }
    return read(
      `select ${selectList(model)} from ${tableName(schema, model)} where ${where.text} limit 1`,
      where.params,
    )
      .pipe(Effect.map((rows) => asModelRows(model, rows[0]))) as never
  },
  list: (model, options?: ListOptions<Row>) => {
    const where = whereClause(model, host, options?.where, options?.includeDeleted ?? false)
    const order = (options?.orderBy ?? []).map(([name, dir]) => {
      columnOf(model, name)
      return { column: name, desc: dir === "desc" }
    })
    // parameters, not text: every distinct text is one more prepared statement on every connection
    const params = [...where.params]
    const bound = (n: number) => {
      params.push(rowCount(n))
      return `$${params.length}::int8`
    }
    const { limit, offset } = options ?? {}
    for (const [name, n] of [["limit", limit], ["offset", offset]] as const) {
      if (Number.isNaN(n)) {
        return Effect.die(
          new RangeError(`${model.table}: list's ${name} is NaN; pass a number, or leave it out`),
        )
      }
    }
    // an infinite limit is no limit; an infinite offset skips every row (clamped like any other)
    const tail = (limit !== undefined && limit !== Infinity ? ` limit ${bound(limit)}` : "") +
      (offset !== undefined ? ` offset ${bound(offset)}` : "")
    const object = jsonObjectOf(model)
    if (object) {
      const text = jsonListQuery(object, tableName(schema, model), where.text, order, tail)
      return read(text, params).pipe(Effect.map(parseJson(model))) as never
    }
    // qualified: an output column of the same name (a timestamp rendered as text) must not
    // be what is sorted — the table's column is, so its index serves the order
    const orderBy = order.map((o) => `t.${q(o.column)}${o.desc ? " desc" : " asc"}`)
    const text = `select ${selectList(model)} from ${tableName(schema, model)} as t where ${where.text}` +
      (orderBy.length ? ` order by ${orderBy.join(", ")}` : "") + tail
    return read(text, params).pipe(
      Effect.map((rows) => asModelRows(model, rows)),
    ) as never
  },
  count: (model, where) => {
    const w = whereClause(model, host, where as Row | undefined, false)
    return read(`select count(*)::int8 as n from ${tableName(schema, model)} where ${w.text}`, w.params)
      .pipe(
        Effect.map((rows) => Number(rows[0]?.n ?? 0)),
      )
  },
})

export interface PipelinedProjectionWriter extends SystemProjectionWriter {
  /** Sends the combined inserts still queued (before the pipeline's flush). */
  readonly sendQueued: () => void
}

/**
 * Reads and writes for projections. With a pipeline, writes are sent without waiting
 * (checked at the pipeline's flush) and plain inserts are combined per table
 * (combined-inserts.ts); reads still wait and see every earlier write.
 */
export function makeProjectionWriter(tx: SqlTx, schema: string, host: string): SystemProjectionWriter
export function makeProjectionWriter(
  tx: SqlTx,
  schema: string,
  host: string,
  pipeline: Pipeline,
): PipelinedProjectionWriter
export function makeProjectionWriter(
  tx: SqlTx,
  schema: string,
  host: string,
  pipeline?: Pipeline,
): SystemProjectionWriter | PipelinedProjectionWriter {
  const combined = pipeline && makeCombinedInserts(tx, host, pipeline)
  const reader = makeHostReader(readsIn(tx), schema, host)
  /** Before a statement on `table`: what is queued for it goes first. */
  const write = (
    table: string,
    text: string,
    params: ReadonlyArray<unknown>,
  ): Effect.Effect<void, DatabaseError> =>
    pipeline
      ? Effect.sync(() => {
        combined?.flushTable(table)
        // deno-lint-ignore no-explicit-any -- postgres.js types parameters as its own serializable union
        pipeline.send(tx.unsafe(text, params as any, { prepare: true }))
      })
      : Effect.asVoid(run(tx, text, params))
  const beforeRead = <A>(read: Effect.Effect<A, DatabaseError>) =>
    combined ? Effect.andThen(Effect.sync(combined.flushAll), read) : read
  /** `onConflict`: fail, replace every model column, or add to one column (`$?` is the amount). */
  const insertLike = (
    model: Model,
    row: Row,
    onConflict: "error" | "replace" | { readonly add: string; readonly by: number },
  ) => {
    const names = Object.keys(row).filter((k) => row[k] !== undefined)
    const columns = names.map((n) => columnOf(model, n))
    const table = tableName(schema, model)
    if (combined && onConflict === "error") {
      return Effect.sync(() => combined.add(table, columns, columns.map((c, i) => param(c, row[names[i]]))))
    }
    // a counter whose new row starts at the amount added combines with the batch's other counts
    // (its column is one of the row's, checked above)
    if (combined && typeof onConflict === "object" && row[onConflict.add] === onConflict.by && "id" in row) {
      return Effect.sync(() =>
        combined.addCount(table, columns, columns.map((c, i) => param(c, row[names[i]])), onConflict.add)
      )
    }
    const params = [host, ...columns.map((c, i) => param(c, row[names[i]]))]
    const values = ["$1", ...columns.map((c, i) => placeholder(c, i + 2))]
    let conflict = ""
    if (onConflict === "replace") {
      // the row as written, live again if it was soft-deleted (buffered-writer.ts does the same)
      const sets = modelColumns(model).filter((c) => c.name !== "id").map((c) =>
        `${q(c.name)} = excluded.${q(c.name)}`
      )
      if (model.options.softDelete) sets.push(`${q(DELETED_AT.name)} = null`)
      conflict = ` on conflict (host, id) do update set ${sets.join(", ") || "id = excluded.id"}`
    } else if (onConflict !== "error") {
      columnOf(model, onConflict.add)
      params.push(onConflict.by)
      const column = q(onConflict.add)
      conflict =
        ` on conflict (host, id) do update set ${column} = coalesce(t.${column}, 0) + $${params.length}`
    }
    return write(
      table,
      `insert into ${table} as t (host, ${names.map(q).join(", ")}) values (${values.join(", ")})${conflict}`,
      params,
    )
  }
  const updateSet = (model: Model, id: unknown, sets: ReadonlyArray<[string, string, unknown]>) => {
    const params: Array<unknown> = [host, param(columnOf(model, "id"), id)]
    const assignments = sets.map(([name, expr, value]) => {
      params.push(value)
      return `${q(name)} = ${expr.replace("$?", `$${params.length}`)}`
    })
    const table = tableName(schema, model)
    return write(table, `update ${table} set ${assignments.join(", ")} where host = $1 and id = $2`, params)
  }
  return {
    get: (model, id, options) => beforeRead(reader.get(model, id, options)),
    list: (model, options) => beforeRead(reader.list(model, options)),
    count: (model, where) => beforeRead(reader.count(model, where)),
    sendQueued: () => combined?.flushAll(),
    insert: (model, row) => insertLike(model, row as Row, "error"),
    upsert: (model, row) => insertLike(model, row as Row, "replace"),
    update: (model, id, patch) => {
      const entries = Object.entries(patch as Row).filter(([, v]) => v !== undefined)
      if (entries.length === 0) return Effect.void
      return updateSet(
        model,
        id,
        entries.map(([name, value]) => {
          const column = columnOf(model, name)
          return [name, column.isJson ? "$?::jsonb" : "$?", param(column, value)]
        }),
      )
    },
    increment: (model, id, column, by = 1) => {
      columnOf(model, column)
      return updateSet(model, id, [[column, `coalesce(${q(column)}, 0) + $?`, by]])
    },
    incrementOrInsert: (model, row, column, by = 1) => insertLike(model, row as Row, { add: column, by }),
    softDelete: (model, id, at) => {
      if (!model.options.softDelete) return Effect.die(new Error(`model ${model.table} has no soft delete`))
      return updateSet(model, id, [["deleted_at", "$?", at]])
    },
    remove: (model, where) => {
      const w = whereClause(model, host, where as Row, true)
      const table = tableName(schema, model)
      return write(table, `delete from ${table} where ${w.text}`, w.params)
    },
    purgeSoftDeleted: (model, ids, deletedBefore) => {
      if (ids.length === 0) return Effect.void
      const table = tableName(schema, model)
      const { text, params } = purgeStatement(tx, table, host, columnOf(model, "id"), ids, deletedBefore)
      return write(table, text, params)
    },
  }
}
