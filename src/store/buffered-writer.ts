/**
 * A projection writer for replays: rows live in a bounded in-memory cache and reach
 * Postgres in multi-row statements at `flush` (or when the cache is full, or before any
 * `list`/`count`/`remove`, which read SQL). A counter bumped by 100,000 events becomes one
 * write instead of 100,000 row versions in one transaction. A change to a row not in the
 * cache (an old item's comment count, a soft delete) is kept as a patch (row-patch.ts) and
 * written at flush with the others of its shape in one update: no read round trip, and no
 * statement, per event. Same ProjectionWriter semantics as the live writer (model-access.ts);
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

/** Blind changes in flight at most before the writer waits for their answers (memory stays bounded). */
const MAX_IN_FLIGHT = 2_000

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
}

export interface BufferedProjectionWriter extends ProjectionWriter {
  readonly flush: Effect.Effect<void, DatabaseError>
  /** Fails with the first error of the statements sent without waiting (before a read of the caller's). */
  readonly check: Effect.Effect<void, DatabaseError>
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

  /** The row's entry, read from SQL when it is not cached (or only patched), never a patch. */
  const load = (model: Model, id: unknown): Effect.Effect<Entry, DatabaseError> =>
    Effect.suspend(() => {
      const cached = touch(keyOf(model, id))
      if (cached && !cached.patch) return Effect.succeed(cached)
      return Effect.andThen(awaitBlind, reader.get(model, id as never, { includeDeleted: true })).pipe(
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

  const insertRow = (model: Model, row: Row): Effect.Effect<void, DatabaseError> =>
    Effect.suspend(() => {
      if (cache.get(keyOf(model, row.id))?.row) {
        const message = `duplicate key (host, id) = (${host}, ${String(row.id)}) in ${model.table}`
        return Effect.fail(new DatabaseError({ message, code: UNIQUE_VIOLATION }))
      }
      // not cached, or known absent: a plain insert at flush (a row on disk fails it, as live)
      return Effect.asVoid(remember(model, row.id, fullRow(model, row), "insert", true))
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

  const flush: Effect.Effect<void, DatabaseError> = Effect.suspend(() => {
    const groups = new Map<string, { model: Model; kind: Entry["kind"]; rows: Array<Row> }>()
    const patched = new Map<string, { model: Model; patches: Array<{ id: unknown; patch: RowPatch }> }>()
    for (const [cacheKey, entry] of cache) {
      if (entry.patch) {
        const shape = `${entry.model.table}|${patchShape(entry.patch)}`
        const group = patched.get(shape) ?? { model: entry.model, patches: [] }
        group.patches.push({ id: cacheKey.slice(cacheKey.indexOf("\u0000") + 1), patch: entry.patch })
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
    return Effect.andThen(
      awaitBlind,
      Effect.andThen(
        Effect.forEach([...groups.values()], (g) => writeGroup(g.model, g.kind, g.rows), { discard: true }),
        Effect.forEach([...patched.values()], (g) => writePatches(g.model, g.patches), { discard: true }),
      ),
    )
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
   * `edit` on the cached row; for a row not loaded, `patch` records the change when its columns
   * can be written in a multi-row update (else the row is loaded first).
   */
  const change = (
    model: Model,
    id: unknown,
    edit: (row: Row) => void,
    columns: ReadonlyArray<string>,
    patch: (patch: RowPatch) => void,
  ) =>
    Effect.suspend(() => {
      const entry = touch(keyOf(model, id))
      const isPatchable = columns.every((c) =>
        canPatch(c === DELETED_AT.name ? DELETED_AT : columnOf(model, c))
      )
      if (isPatchable && (!entry || entry.patch)) {
        if (entry?.patch) return Effect.sync(() => patch(entry.patch!))
        return Effect.flatMap(remember(model, id, undefined, "update", false), (created) =>
          Effect.sync(() => {
            created.patch = emptyPatch()
            patch(created.patch)
          }))
      }
      return Effect.map(load(model, id), (loaded) => {
        if (!loaded.row) return // like SQL's update: no row, no change
        edit(loaded.row)
        loaded.isDirty = true
      })
    })

  return {
    flush,
    check: awaitBlind,
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
        // changes kept for a row not loaded: whether it exists decides (load it)
        if (cache.get(keyOf(model, id))?.patch) {
          return Effect.andThen(load(model, id), () => insertRow(model, row as Row))
        }
        return insertRow(model, row as Row)
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
    update: (model, id, values) => {
      const entries = Object.entries(values as Row).filter(([, v]) => v !== undefined)
      for (const [name] of entries) columnOf(model, name)
      return change(
        model,
        id,
        (row) => {
          for (const [name, value] of entries) row[name] = value
        },
        entries.map(([name]) => name),
        (patch) => {
          for (const [name, value] of entries) setColumn(patch, name, value)
        },
      )
    },
    increment: (model, id, column, by = 1) => {
      columnOf(model, column)
      return change(
        model,
        id,
        (row) => {
          row[column] = Number(row[column] ?? 0) + by
        },
        [column],
        (patch) => addToColumn(patch, column, by),
      )
    },
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
        ? change(
          model,
          id,
          (row) => {
            row.deleted_at = at.toISOString()
          },
          [DELETED_AT.name],
          (patch) => setColumn(patch, DELETED_AT.name, at.toISOString()),
        )
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
              entry.patch = undefined
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
