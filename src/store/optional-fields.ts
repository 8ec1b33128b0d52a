/**
 * Optional model fields (`Schema.optional(X)`, X not accepting null) are nullable columns; a
 * read gives their null back as a missing key, so a row read decodes with the model's own
 * Schema ("Expected string | undefined" refused `null`). Fields that accept null keep it.
 */
import { SchemaAST } from "effect"
import type { Model } from "../projects/model.ts"
import { unionMembers } from "../projects/model-fields.ts"

type Row = Record<string, unknown>

const NULL_ACCEPTING = new Set(["Null", "Unknown", "Any"])

const acceptsNull = (ast: SchemaAST.AST): boolean =>
  unionMembers(SchemaAST.toEncoded(ast)).some((member) => NULL_ACCEPTING.has(member._tag))

const cache = new WeakMap<Model, ReadonlyArray<string>>()

/** The fields of `model` whose null is read back as a missing key. */
export const absentWhenNull = (model: Model): ReadonlyArray<string> => {
  let names = cache.get(model)
  if (!names) {
    names = model.schema.ast.propertySignatures
      .filter((ps) => SchemaAST.isOptional(ps.type) && !acceptsNull(ps.type))
      .map((ps) => String(ps.name))
    cache.set(model, names)
  }
  return names
}

/** Deletes, in place, the null values of `model`'s optional fields from `rows`; gives `rows` back. */
export const dropAbsentOptionals = <A extends Row | ReadonlyArray<Row> | undefined>(
  model: Model,
  rows: A,
): A => {
  const names = absentWhenNull(model)
  if (names.length === 0 || rows === undefined) return rows
  for (const row of (Array.isArray(rows) ? rows : [rows]) as ReadonlyArray<Row>) {
    for (const name of names) if (row[name] === null) delete row[name]
  }
  return rows
}
