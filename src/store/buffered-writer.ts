/**
 * A projection writer for replays: rows live in a bounded in-memory cache and reach
 * Postgres in multi-row statements at `flush` (or when the cache is full, or before any
 * `list`/`count`/`remove`, which read SQL). A counter bumped by 100,000 events becomes one
 * write instead of 100,000 row versions in one transaction. A change to a row not in the
 * cache (an old item's comment count, a soft delete) is kept as a patch (row-patch.ts) and
 * written at flush with the others of its shape in one update: no read round trip, and no
 * statement, per event; a row removed by id is forgotten and deleted at flush with the others.
 * A purge flushes, then deletes in one statement the rows SQL still finds soft-deleted before its
 * cutoff (purge-rows.ts). Same SystemProjectionWriter semantics as the live writer
 * (model-access.ts); the projections are the same code.
 */
import { Effect } from "effect"
import type { SystemProjectionWriter } from "../projects/access.ts"
import type { Model } from "../projects/model.ts"
import { DatabaseError, query, type SqlTx, UNIQUE_VIOLATION } from "./database.ts"
import { columnOf, makeHostReader, readsIn, run, whereClause } from "./model-access.ts"
import { multiRowInserts, unnestAs } from "./multi-row-insert.ts"
import { asModelRows } from "./model-rows.ts"
import { purgeStatement } from "./purge-rows.ts"
import { DELETED_AT, modelColumns, quoteIdentifier as q, tableName } from "./model-ddl.ts"
import {
  addToColumn,
  applyPatch,
  canPatch,
  emptyPatch,
  patchShape,
  patchUpdate,
  type RowPatch,
  setColumn,
} from "./row-patch.ts"

type Row = Record<string, unknown>

interface Entry {
  readonly model: Model
  /** undefined: known not to exist (or, with a patch, not loaded). */
  row: Row | undefined
  /** "insert": not in Postgres yet; "upsert": a blind upsert of the model columns; "update": loaded. */
  kind: "insert" | "upsert" | "update"
  isDirty: boolean
  /** Changes to a row not loaded (it may not exist): written at flush, or applied when it is loaded. */
  patch?: RowPatch
  /**
   * Removed by id: deleted in Postgres at the next flush, before `row` (written again since, as
   * an "insert") is inserted: the new row starts from nothing, as after the live writer's delete.
   */
  isDeleted?: boolean
}

export interface BufferedProjectionWriter extends SystemProjectionWriter {
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
  /** The cached entry, moved to the newest end: eviction drops the least recently used. */
  const touch = (key: string): Entry | undefined => {
    const entry = cache.get(key)
    if (entry) {
      cache.delete(key)
      cache.set(key, entry)
    }
    return entry
  }
  const idOfKey = (key: string) => key.slice(key.indexOf("\u0000") + 1)

  /** The row's entry, read from SQL when it is not cached (or only patched), never a patch. */
  const load = (model: Model, id: unknown): Effect.Effect<Entry, DatabaseError> =>
    Effect.suspend(() => {
      const cached = touch(keyOf(model, id))
      if (cached && !cached.patch) return Effect.succeed(cached)
      return reader.get(model, id as never, { includeDeleted: true }).pipe(
        Effect.flatMap((found) => {
          const row = found as Row | undefined
          if (!cached?.patch) return remember(model, id, row, "update", false)
          // the changes kept for it apply now (to nothing when it does not exist, as in SQL)
          if (row) applyPatch(row, cached.patch)
          Object.assign(cached, { row, kind: "update", isDirty: row !== undefined, patch: undefined })
          return Effect.succeed(cached)
        }),
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
  /** An upsert's row: every model column, and live again if it was soft-deleted (as live). */
  const upsertRow = (model: Model, row: Row): Row =>
    model.options.softDelete ? { ...fullRow(model, row), [DELETED_AT.name]: null } : fullRow(model, row)

  /**
   * `row` written whole (never over changes kept for a row not loaded: load it first): over the
   * cached row; after a removal still to flush, as an insert that follows the delete; else new,
   * as `kind`.
   */
  const writeRow = (model: Model, row: Row, kind: "insert" | "upsert"): Effect.Effect<void, DatabaseError> =>
    Effect.suspend(() => {
      const cached = touch(keyOf(model, row.id))
      if (cached?.row) {
        Object.assign(cached.row, row)
        cached.isDirty = true
        return Effect.void
      }
      if (cached?.isDeleted) {
        Object.assign(cached, { row, kind: "insert", isDirty: true })
        return Effect.void
      }
      return Effect.asVoid(remember(model, row.id, row, kind, true))
    })

  const insertRow = (model: Model, row: Row): Effect.Effect<void, DatabaseError> =>
    Effect.suspend(() => {
      if (cache.get(keyOf(model, row.id))?.row) {
        const message = `duplicate key (host, id) = (${host}, ${String(row.id)}) in ${model.table}`
        return Effect.fail(new DatabaseError({ message, code: UNIQUE_VIOLATION }))
      }
      // not cached, or known absent: a plain insert at flush (a row on disk fails it, as live)
      return writeRow(model, fullRow(model, row), "insert")
    })

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

  const writePatches = (model: Model, patches: ReadonlyArray<{ id: unknown; patch: RowPatch }>) => {
    const { text, params, prepare } = patchUpdate(
      tx,
      tableName(schema, model),
      host,
      columnOf(model, "id"),
      (name) => name === DELETED_AT.name ? DELETED_AT : columnOf(model, name),
      patches,
    )
    // deno-lint-ignore no-explicit-any -- postgres.js types parameters as its own serializable union
    return query(() => tx.unsafe(text, params as any, { prepare }))
  }

  /** Deletes `ids` of `model` in one statement (one per id if the id type has no array form). */
  const deleteRows = (model: Model, ids: ReadonlyArray<unknown>): Effect.Effect<void, DatabaseError> => {
    const table = tableName(schema, model)
    const form = unnestAs(columnOf(model, "id"))
    if (form) {
      const text = `delete from ${table} where host = $1 and id = any($2::${form.array})`
      return Effect.asVoid(run(tx, text, [host, tx.typed(ids, 0)]))
    }
    return Effect.forEach(ids, (id) => {
      const w = whereClause(model, host, { id }, true)
      return run(tx, `delete from ${table} where ${w.text}`, w.params)
    }, { discard: true })
  }

  const flush: Effect.Effect<void, DatabaseError> = Effect.suspend(() => {
    const deleted = new Map<Model, Array<unknown>>()
    const groups = new Map<string, { model: Model; kind: Entry["kind"]; rows: Array<Row> }>()
    const patched = new Map<string, { model: Model; patches: Array<{ id: unknown; patch: RowPatch }> }>()
    for (const [cacheKey, entry] of cache) {
      if (entry.isDeleted) {
        deleted.set(entry.model, [...(deleted.get(entry.model) ?? []), idOfKey(cacheKey)])
        entry.isDeleted = false // known absent from now on, or holding the row written since
        if (!entry.row) continue
      }
      if (entry.patch) {
        const shape = `${entry.model.table}|${patchShape(entry.patch)}`
        const group = patched.get(shape) ?? { model: entry.model, patches: [] }
        group.patches.push({ id: idOfKey(cacheKey), patch: entry.patch })
        patched.set(shape, group)
        cache.delete(cacheKey) // written below: what the row holds is unknown again
        continue
      }
      if (!entry.isDirty || !entry.row) continue
      const key = `${entry.model.table}|${entry.kind}|${Object.keys(entry.row).join(",")}`
      const group = groups.get(key) ?? { model: entry.model, kind: entry.kind, rows: [] }
      group.rows.push(entry.row)
      groups.set(key, group)
      entry.isDirty = false
      entry.kind = "update"
    }
    // deletes first: a row written after its removal is inserted after it
    return Effect.all([
      Effect.forEach([...deleted], ([model, ids]) => deleteRows(model, ids), { discard: true }),
      Effect.forEach([...groups.values()], (g) => writeGroup(g.model, g.kind, g.rows), { discard: true }),
      Effect.forEach([...patched.values()], (g) => writePatches(g.model, g.patches), { discard: true }),
    ], { discard: true })
  })

  const flushAndForget = Effect.andThen(flush, Effect.sync(() => cache.clear()))
  /** Makes room keeping the more recently used half: a replay's next events mostly touch those. */
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

  /**
   * A change to `columns`, as `record` writes it into a patch: kept in the row's patch when the
   * row is not loaded and the columns can be written in a multi-row update, else applied to the
   * loaded row (loading it first).
   */
  const change = (
    model: Model,
    id: unknown,
    columns: ReadonlyArray<string>,
    record: (patch: RowPatch) => void,
  ) =>
    Effect.suspend(() => {
      const entry = touch(keyOf(model, id))
      const isPatchable = columns.every((c) =>
        canPatch(c === DELETED_AT.name ? DELETED_AT : columnOf(model, c))
      )
      if (isPatchable && (!entry || entry.patch)) {
        if (entry?.patch) return Effect.sync(() => record(entry.patch!))
        return Effect.flatMap(remember(model, id, undefined, "update", false), (created) =>
          Effect.sync(() => {
            created.patch = emptyPatch()
            record(created.patch)
          }))
      }
      return Effect.map(load(model, id), (loaded) => {
        if (!loaded.row) return // like SQL's update: no row, no change
        const patch = emptyPatch()
        record(patch)
        applyPatch(loaded.row, patch)
        loaded.isDirty = true
      })
    })

  return {
    flush,
    get: (model, id, options) =>
      Effect.map(load(model, id), (entry) => {
        const row = entry.row
        if (!row || (model.options.softDelete && row.deleted_at && !options?.includeDeleted)) return undefined
        return asModelRows(model, { ...row })
      }) as never,
    list: (model, options) => Effect.andThen(flush, reader.list(model, options)),
    count: (model, where) => Effect.andThen(flush, reader.count(model, where)),
    insert: (model, row) =>
      Effect.suspend(() => {
        const id = (row as Row).id
        // changes kept for a row not loaded: whether it exists decides (load it)
        if (cache.get(keyOf(model, id))?.patch) {
          return Effect.andThen(load(model, id), () => insertRow(model, row as Row))
        }
        return insertRow(model, row as Row)
      }),
    upsert: (model, row) =>
      Effect.suspend(() => {
        const full = upsertRow(model, row as Row)
        // changes kept for a row not loaded: load it first, then write the upsert over it
        if (cache.get(keyOf(model, full.id))?.patch) {
          return Effect.andThen(load(model, full.id), () => writeRow(model, full, "upsert"))
        }
        return writeRow(model, full, "upsert")
      }),
    update: (model, id, values) => {
      const entries = Object.entries(values as Row).filter(([, v]) => v !== undefined)
      for (const [name] of entries) columnOf(model, name)
      // nothing to set: no change, as the live writer does (an empty patch is no statement)
      if (entries.length === 0) return Effect.void
      return change(model, id, entries.map(([name]) => name), (patch) => {
        for (const [name, value] of entries) setColumn(patch, name, value)
      })
    },
    increment: (model, id, column, by = 1) => {
      columnOf(model, column)
      return change(model, id, [column], (patch) => addToColumn(patch, column, by))
    },
    incrementOrInsert: (model, row, column, by = 1) =>
      Effect.flatMap(load(model, (row as Row).id), (entry) => {
        columnOf(model, column)
        if (!entry.row) return writeRow(model, fullRow(model, row as Row), "insert")
        entry.row[column] = Number(entry.row[column] ?? 0) + by
        entry.isDirty = true
        return Effect.void
      }),
    softDelete: (model, id, at) =>
      model.options.softDelete
        ? change(model, id, [DELETED_AT.name], (patch) => setColumn(patch, DELETED_AT.name, at.toISOString()))
        : Effect.die(new Error(`model ${model.table} has no soft delete`)),
    remove: (model, where) => {
      const keys = Object.keys(where as Row)
      if (keys.length === 1 && keys[0] === "id") {
        // one row by id (a replay may remove thousands): forgotten here and deleted at the next flush
        // with the others — no flush, no cache emptied, no round trip per row
        const id = (where as Row).id
        return Effect.suspend(() => {
          const entry = cache.get(keyOf(model, id))
          if (!entry) {
            return Effect.map(remember(model, id, undefined, "update", false), (created) => {
              created.isDeleted = true
            })
          }
          Object.assign(entry, { row: undefined, isDirty: false, patch: undefined, isDeleted: true })
          return Effect.void
        })
      }
      return Effect.andThen(flushAndForget, () => {
        const w = whereClause(model, host, where as Row, true)
        return run(tx, `delete from ${tableName(schema, model)} where ${w.text}`, w.params)
      }).pipe(Effect.asVoid)
    },
    purgeSoftDeleted: (model, ids, deletedBefore) => {
      if (ids.length === 0) return Effect.void
      // whether a row is still soft-deleted is for SQL to say, on everything written before the
      // purge; what was cached of those rows is unknown afterwards, and read again when needed
      const { text, params } = purgeStatement(
        tx,
        tableName(schema, model),
        host,
        columnOf(model, "id"),
        ids,
        deletedBefore,
      )
      return Effect.andThen(flush, run(tx, text, params)).pipe(
        Effect.andThen(Effect.sync(() => {
          for (const id of ids) cache.delete(keyOf(model, id))
        })),
      )
    },
  }
}
