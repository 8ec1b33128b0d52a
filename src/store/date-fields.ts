/**
 * A model's `Schema.Date` fields as reads give them: their columns are rendered as ISO text by
 * Postgres (json-rows.ts timeTextOf), on both read paths, and made Dates again here, so a row
 * read takes the model's own Schema. Writes need nothing: postgres.js sends a Date to a time column.
 */
import type { Model } from "../projects/model.ts"
import { isDateField } from "../projects/model-fields.ts"

type Row = Record<string, unknown>

const cache = new WeakMap<Model, ReadonlyArray<string>>()

const dateFieldsOf = (model: Model): ReadonlyArray<string> => {
  let names = cache.get(model)
  if (!names) {
    names = model.schema.ast.propertySignatures.filter((ps) => isDateField(ps.type)).map((ps) =>
      String(ps.name)
    )
    cache.set(model, names)
  }
  return names
}

/** Turns, in place, the text of `model`'s Date fields in `rows` into Dates; gives `rows` back. */
export const readDates = <A>(model: Model, rows: A): A => {
  const names = dateFieldsOf(model)
  if (names.length === 0 || rows === undefined || rows === null) return rows
  for (const row of (Array.isArray(rows) ? rows : [rows]) as ReadonlyArray<Row>) {
    for (const name of names) {
      const value = row[name]
      if (typeof value === "string") row[name] = new Date(value)
    }
  }
  return rows
}
