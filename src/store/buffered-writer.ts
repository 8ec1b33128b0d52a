/**
 * A projection writer for replays: rows live in a bounded in-memory cache and reach
 * Postgres in multi-row statements at `flush` (or when the cache is full, or before any
 * `list`/`count`/`remove`, which read SQL). A counter bumped by 100,000 events becomes one
 * write instead of 100,000 row versions in one transaction. A change to a row not in the
 * cache (an old item's comment count) is the live writer's statement, pipelined: no read
 * round trip per event. Same ProjectionWriter semantics as the live writer (model-access.ts);
 * the projections are the same code.
 */
import { Effect } from "effect"
import type { ProjectionWriter } from "../projects/access.ts"
import type { Model } from "../projects/model.ts"
import { DatabaseError, query, type SqlTx, UNIQUE_VIOLATION } from "./database.ts"
import { columnOf, makeHostReader, makeProjectionWriter, readsIn, run, whereClause } from "./model-access.ts"
import { multiRowInserts } from "./multi-row-insert.ts"
import { DELETED_AT, modelColumns, quoteIdentifier as q, tableName } from "./model-ddl.ts"
import { makePipeline } from "./pipeline.ts"

/** Blind changes in flight at most before the writer waits for their answers (memory stays bounded). */
const MAX_IN_FLIGHT = 2_000

type Row = Record<string, unknown>

interface Entry {
  readonly model: Model
  /** undefined: known not to exist. */
  row: Row | undefined
  /** "insert": not in Postgres yet; "upsert": a blind upsert of the model columns; "update": loaded. */
  kind: "insert" | "upsert" | "update"
  isDirty: boolean
}

export interface BufferedProjectionWriter extends ProjectionWriter {
  readonly flush: Effect.Effect<void, DatabaseError>
}

export const makeBufferedProjectionWriter = (
  tx: SqlTx,
  schema: string,
  host: string,
  capacity = 50_000,
): BufferedProjectionWriter => {
  const reader = makeHostReader(readsIn(tx), schema, host)
  const cache = new Map<string, Entry>()
  const keyOf = (model: Model, id: unknown) => `${model.table}\u0000${String(id)}`
  // rows not cached are changed blindly, as live: on one connection statements run in the order
  // sent, so a later read or flushed row sees them; a failure surfaces at the next wait
  const pipeline = makePipeline()
  const blind = makeProjectionWriter(tx, schema, host, pipeline)
  let inFlight = 0
  const awaitBlind = Effect.suspend(() => {
    inFlight = 0
    return pipeline.flush
  })
  const sentBlind = Effect.suspend(() => ++inFlight >= MAX_IN_FLIGHT ? awaitBlind : Effect.void)

  const load = (model: Model, id: unknown): Effect.Effect<Entry, DatabaseError> =>
    Effect.suspend(() => {
      const cached = cache.get(keyOf(model, id))
      if (cached) return Effect.succeed(cached)
      return Effect.andThen(awaitBlind, reader.get(model, id as never, { includeDeleted: true })).pipe(
        Effect.flatMap((row) => remember(model, id, row as Row | undefined, "update", false)),
      )
    })

  const remember = (model: Model, id: unknown, row: Row | undefined, kind: Entry["kind"], isDirty: boolean) =>
    Effect.gen(function* () {
      if (cache.size >= capacity) yield* flushAndEvict
      const entry: Entry = { model, row, kind, isDirty }
      cache.set(keyOf(model, id), entry)
      return entry
    })

  const fullRow = (model: Model, row: Row): Row =>
    Object.fromEntries(modelColumns(model).map((c) => [c.name, row[c.name] ?? null]))

  const writeGroup = (model: Model, kind: Entry["kind"], rows: ReadonlyArray<Row>) => {
    const names = Object.keys(rows[0])
    const columns = names.map((n) => n === DELETED_AT.name ? DELETED_AT : columnOf(model, n))
    const updates = names.filter((n) => n !== "id").map((n) => `${q(n)} = excluded.${q(n)}`)
    const conflict = kind === "insert"
      ? ""
      : ` on conflict (host, id) do update set ${updates.join(", ") || "id = excluded.id"}`
    const values = rows.map((row) => names.map((n) => row[n] ?? null))
    return Effect.forEach(
      multiRowInserts(tx, { table: tableName(schema, model), host, columns, rows: values, suffix: conflict }),
      // deno-lint-ignore no-explicit-any -- postgres.js types parameters as its own serializable union
      ({ text, params, prepare }) => query(() => tx.unsafe(text, params as any, { prepare })),
      { discard: true },
    )
  }

  const flush: Effect.Effect<void, DatabaseError> = Effect.suspend(() => {
    const groups = new Map<string, { model: Model; kind: Entry["kind"]; rows: Array<Row> }>()
    for (const entry of cache.values()) {
      if (!entry.isDirty || !entry.row) continue
      const key = `${entry.model.table}|${entry.kind}|${Object.keys(entry.row).join(",")}`
      const group = groups.get(key) ?? { model: entry.model, kind: entry.kind, rows: [] }
      group.rows.push(entry.row)
      groups.set(key, group)
      entry.isDirty = false
      entry.kind = "update"
    }
    return Effect.andThen(
      awaitBlind,
      Effect.forEach([...groups.values()], (g) => writeGroup(g.model, g.kind, g.rows), { discard: true }),
    )
  })

  const flushAndForget = Effect.andThen(flush, Effect.sync(() => cache.clear()))
  /** Makes room keeping the newer half: a replay's next events mostly touch recent rows. */
  const flushAndEvict = Effect.andThen(
    flush,
    Effect.sync(() => {
      let evict = cache.size - Math.floor(capacity / 2)
      for (const key of cache.keys()) {
        if (evict-- <= 0) break
        cache.delete(key)
      }
    }),
  )

  /** `edit` on the cached row, or the live writer's statement (`blindly`) when not cached. */
  const change = (
    model: Model,
    id: unknown,
    edit: (row: Row) => void,
    blindly: () => Effect.Effect<void, DatabaseError>,
  ) =>
    Effect.suspend(() => {
      const entry = cache.get(keyOf(model, id))
      if (!entry) return Effect.andThen(blindly(), sentBlind)
      if (entry.row) { // like SQL's update: no row, no change
        edit(entry.row)
        entry.isDirty = true
      }
      return Effect.void
    })

  return {
    flush,
    get: (model, id, options) =>
      Effect.map(load(model, id), (entry) => {
        const row = entry.row
        if (!row || (model.options.softDelete && row.deleted_at && !options?.includeDeleted)) return undefined
        return { ...row }
      }) as never,
    list: (model, options) => Effect.andThen(flush, reader.list(model, options)),
    count: (model, where) => Effect.andThen(flush, reader.count(model, where)),
    insert: (model, row) =>
      Effect.suspend(() => {
        const id = (row as Row).id
        if (cache.get(keyOf(model, id))?.row) {
          const message = `duplicate key (host, id) = (${host}, ${String(id)}) in ${model.table}`
          return Effect.fail(new DatabaseError({ message, code: UNIQUE_VIOLATION }))
        }
        // not cached, or known absent: a plain insert at flush (a row on disk fails it, as live)
        return Effect.asVoid(remember(model, id, fullRow(model, row as Row), "insert", true))
      }),
    upsert: (model, row) =>
      Effect.suspend(() => {
        const id = (row as Row).id
        const cached = cache.get(keyOf(model, id))
        if (cached?.row) {
          Object.assign(cached.row, fullRow(model, row as Row))
          cached.isDirty = true
          return Effect.void
        }
        return Effect.asVoid(remember(model, id, fullRow(model, row as Row), "upsert", true))
      }),
    update: (model, id, patch) =>
      change(model, id, (row) => {
        for (const [name, value] of Object.entries(patch as Row)) {
          if (value === undefined) continue
          columnOf(model, name)
          row[name] = value
        }
      }, () => blind.update(model, id, patch)),
    increment: (model, id, column, by = 1) =>
      change(model, id, (row) => {
        columnOf(model, column)
        row[column] = Number(row[column] ?? 0) + by
      }, () => blind.increment(model, id, column, by)),
    incrementOrInsert: (model, row, column, by = 1) =>
      Effect.flatMap(load(model, (row as Row).id), (entry) => {
        columnOf(model, column)
        if (!entry.row) {
          return Effect.asVoid(remember(model, (row as Row).id, fullRow(model, row as Row), "insert", true))
        }
        entry.row[column] = Number(entry.row[column] ?? 0) + by
        entry.isDirty = true
        return Effect.void
      }),
    softDelete: (model, id, at) =>
      model.options.softDelete
        ? change(model, id, (row) => {
          row.deleted_at = at.toISOString()
        }, () => blind.softDelete(model, id, at))
        : Effect.die(new Error(`model ${model.table} has no soft delete`)),
    remove: (model, where) => {
      const keys = Object.keys(where as Row)
      if (keys.length === 1 && keys[0] === "id") {
        // one row by id (a purge replays thousands): forget it here, delete it blindly as live —
        // no flush, no cache emptied, no round trip per row
        const id = (where as Row).id
        return Effect.suspend(() => {
          const entry = cache.get(keyOf(model, id))
          const forget = entry
            ? Effect.sync(() => {
              entry.row = undefined
              entry.isDirty = false
            })
            : remember(model, id, undefined, "insert", false)
          return forget.pipe(Effect.andThen(blind.remove(model, where)), Effect.andThen(sentBlind))
        })
      }
      return Effect.andThen(flushAndForget, () => {
        const w = whereClause(model, host, where as Row, true)
        return run(tx, `delete from ${tableName(schema, model)} where ${w.text}`, w.params)
      }).pipe(Effect.asVoid)
    },
  }
}
