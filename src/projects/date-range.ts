/**
 * The Dates a handler's input may hold: the years 1 to 9999, what both ISO-8601 text with a
 * four-digit year and Postgres' timestamptz carry. postgres.js sends a Date as its toISOString,
 * which Postgres refuses for "+010000-…", "0000-…" or "-000001-…": such a Date in input ended as
 * a 500 from deep in a write, and is now the input's issue (400), at its path.
 */
import { Schema, type SchemaAST } from "effect"

const FIRST = Date.parse("0001-01-01T00:00:00.000Z")
const LAST = Date.parse("9999-12-31T23:59:59.999Z")

const OUT_OF_RANGE = "a date from the year 1 to 9999 is expected"

/**
 * Whether a value of the type `ast` describes may hold a Date: true for any declaration (a Date,
 * a class, a Map …) or recursive schema, without looking further; false for JSON-only shapes.
 */
export const mayHoldDate = (ast: SchemaAST.AST): boolean => {
  switch (ast._tag) {
    case "Declaration":
    case "Suspend":
      return true
    case "Objects":
      return ast.propertySignatures.some((p) => mayHoldDate(p.type)) ||
        ast.indexSignatures.some((i) => mayHoldDate(i.type))
    case "Arrays":
      return ast.elements.some(mayHoldDate) || ast.rest.some(mayHoldDate)
    case "Union":
      return ast.types.some(mayHoldDate)
    default:
      return false
  }
}

/** The Dates outside the years 1 to 9999 in a decoded value, by path (breadth first, no recursion). */
const outOfRangeDates = (value: unknown): ReadonlyArray<Schema.FilterIssue> => {
  const found: Array<Schema.FilterIssue> = []
  const seen = new Set<object>()
  const pending: Array<{ value: unknown; path: ReadonlyArray<PropertyKey> }> = [{ value, path: [] }]
  for (let i = 0; i < pending.length; i++) {
    const { value, path } = pending[i]
    if (value === null || typeof value !== "object" || seen.has(value)) continue
    seen.add(value)
    // only objects can be or hold a Date: a long array of numbers queues nothing
    const within = (key: PropertyKey, item: unknown) => {
      if (item !== null && typeof item === "object") pending.push({ value: item, path: [...path, key] })
    }
    if (value instanceof Date) {
      const time = value.getTime()
      if (!(time >= FIRST && time <= LAST)) found.push({ path, issue: OUT_OF_RANGE })
    } else if (Array.isArray(value)) value.forEach((item, i) => within(i, item))
    else if (value instanceof Map) value.forEach((item, key) => within(String(key), item))
    else if (value instanceof Set) [...value].forEach((item, i) => within(i, item))
    else for (const key of Object.keys(value)) within(key, (value as Record<string, unknown>)[key])
  }
  return found
}

/**
 * Refuses input holding a Date outside the years 1 to 9999, at each such Date's path. For a
 * handler's decoded input (handler-run.ts), whose schema `mayHoldDate`.
 */
export const inDateRange = Schema.makeFilter<unknown>((value) => outOfRangeDates(value))
