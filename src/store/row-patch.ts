/**
 * Changes to a row that is not loaded, kept until they can be written for many rows at once:
 * columns set to a value and counters added to, folded in the order they came (a set after an
 * add wins; an add after a set adds to the value set). Applied in SQL as an update of the rows
 * that exist — like a live `update`, a row that does not exist stays absent — or in memory to a
 * row loaded meanwhile. The replay writer uses it so that 250,000 comment counts bumped on rows
 * it no longer caches are a few statements, not 250,000.
 */
import type { SqlTx } from "./database.ts"
import { type Column, quoteIdentifier as q } from "./model-ddl.ts"
import type { Statement } from "./multi-row-insert.ts"
import { unnestAs } from "./multi-row-insert.ts"

type Row = Record<string, unknown>

export interface RowPatch {
  readonly sets: Map<string, unknown>
  readonly adds: Map<string, number>
}

export const emptyPatch = (): RowPatch => ({ sets: new Map(), adds: new Map() })

/** Whether a column's values can travel in a multi-row update (its type has an array form). */
export const canPatch = (column: Column): boolean => unnestAs(column) !== undefined

export const setColumn = (patch: RowPatch, column: string, value: unknown): void => {
  patch.adds.delete(column)
  patch.sets.set(column, value)
}

export const addToColumn = (patch: RowPatch, column: string, by: number): void => {
  if (patch.sets.has(column)) patch.sets.set(column, Number(patch.sets.get(column) ?? 0) + by)
  else patch.adds.set(column, (patch.adds.get(column) ?? 0) + by)
}

/** The patch applied to a loaded row, as the SQL update would have. */
export const applyPatch = (row: Row, patch: RowPatch): void => {
  for (const [column, value] of patch.sets) row[column] = value
  for (const [column, by] of patch.adds) row[column] = Number(row[column] ?? 0) + by
}

/** Patches with the same columns set and added: one statement updates them all. */
export const patchShape = (patch: RowPatch): string =>
  `${[...patch.sets.keys()].sort().join(",")}|${[...patch.adds.keys()].sort().join(",")}`

/**
 * `update <table> … from unnest(ids, values…)` for patches of one shape; the columns are
 * looked up with `columnOf`. Every column must be one `canPatch` accepts.
 */
export const patchUpdate = (
  tx: SqlTx,
  table: string,
  host: string,
  idColumn: Column,
  columnOf: (name: string) => Column,
  patches: ReadonlyArray<{ readonly id: unknown; readonly patch: RowPatch }>,
): Statement => {
  const first = patches[0].patch
  const sets = [...first.sets.keys()].sort()
  const adds = [...first.adds.keys()].sort()
  const columns = [idColumn, ...[...sets, ...adds].map(columnOf)]
  const forms = columns.map((c) => unnestAs(c)!)
  const names = columns.map((c) => q(c.name))
  const params: Array<unknown> = [host]
  const valuesOf = (i: number, value: (patch: RowPatch, id: unknown) => unknown) => {
    const values = patches.map(({ id, patch }) => value(patch, id) ?? null)
    // type 0: Postgres names the array type (postgres.js would guess a scalar type from a Date)
    params.push(
      tx.typed(forms[i].isJsonText ? values.map((v) => v === null ? null : JSON.stringify(v)) : values, 0),
    )
  }
  valuesOf(0, (_, id) => id)
  sets.forEach((name, i) => valuesOf(1 + i, (patch) => patch.sets.get(name)))
  adds.forEach((name, i) => valuesOf(1 + sets.length + i, (patch) => patch.adds.get(name)))
  const assignments = [
    ...sets.map((name, i) => `${q(name)} = u.${names[1 + i]}${forms[1 + i].cast}`),
    ...adds.map((name, i) => {
      const at = 1 + sets.length + i
      return `${q(name)} = coalesce(t.${q(name)}, 0) + u.${names[at]}${forms[at].cast}`
    }),
  ]
  const arrays = forms.map((f, i) => `$${i + 2}::${f.array}`)
  return {
    text: `update ${table} as t set ${assignments.join(", ")} from unnest(${arrays.join(", ")}) as u(${
      names.join(", ")
    }) where t.host = $1 and t.id = u.${names[0]}${forms[0].cast}`,
    params,
    prepare: true,
  }
}
