/**
 * What a model field may be: a value a table stores and a read gives back as the field's Schema
 * says. JSON types (jsonb, text, double precision, boolean columns), and a whole-field
 * `Schema.Date` (a timestamptz column, read back as a Date). Anything else would type-check and
 * then fail at run time, so `defineModel` refuses it, naming the field.
 */
import { SchemaAST } from "effect"

/** The members of a union, nested unions flattened; any other Schema is its own one member. */
export const unionMembers = (ast: SchemaAST.AST): ReadonlyArray<SchemaAST.AST> =>
  ast._tag === "Union" ? ast.types.flatMap(unionMembers) : [ast]

export const isNullish = (ast: SchemaAST.AST): boolean => ast._tag === "Null" || ast._tag === "Undefined"

const representationOf = (ast: SchemaAST.AST): string | undefined =>
  (ast.annotations?.representation as { readonly id?: string } | undefined)?.id

const isDate = (ast: SchemaAST.AST) =>
  ast._tag === "Declaration" && representationOf(ast) === "effect/schema/Date"

/** A `Schema.Date` field, optional or nullable: a timestamptz column, read back as a Date. */
export const isDateField = (ast: SchemaAST.AST): boolean => {
  const values = unionMembers(ast).filter((m) => !isNullish(m))
  return values.length > 0 && values.every(isDate)
}

/**
 * Which time type a column type is (typmods and case aside), undefined for any other: the one
 * reading of a column type's time kind, for Date fields, their read text (json-rows.ts
 * timeTextOf) and timestamp parameters (model-access.ts).
 */
export const timeKindOf = (type: string): "timestamptz" | "timestamp" | "date" | undefined => {
  switch (type.toLowerCase().replace(/\s*\(\s*\d+\s*\)/, "").trim()) {
    case "timestamptz":
    case "timestamp with time zone":
      return "timestamptz"
    case "timestamp":
    case "timestamp without time zone":
      return "timestamp"
    case "date":
      return "date"
  }
  return undefined
}

/** Why a value of `ast` could not be stored as JSON and read back as it is; undefined when it can. */
const _unstorable = (ast: SchemaAST.AST, depth: number): string | undefined => {
  if (depth > 32) return undefined // a recursive Schema (Suspend): its members were seen above
  const inner = (types: ReadonlyArray<SchemaAST.AST>) => {
    for (const type of types) {
      const reason = _unstorable(type, depth + 1)
      if (reason) return reason
    }
    return undefined
  }
  switch (ast._tag) {
    case "Declaration": {
      if (isDate(ast)) return "holds a Schema.Date inside a JSON value, which reads back as a string"
      const name = representationOf(ast)?.replace("effect/schema/", "") ??
        "class instance or other Declaration"
      return `holds a ${name}, which has no JSON form a read gives back`
    }
    case "BigInt":
      return "is a BigInt, which JSON and a double precision column cannot hold"
    case "Symbol":
    case "UniqueSymbol":
      return "holds a symbol, which has no JSON form"
    case "Literal":
      if (typeof ast.literal === "bigint") {
        return "is a BigInt, which JSON and a double precision column cannot hold"
      }
      break
    case "Union":
      return inner(ast.types)
    case "Arrays":
      return inner([...ast.elements, ...ast.rest])
    case "Objects":
      return inner([
        ...ast.propertySignatures.map((ps) => ps.type),
        ...ast.indexSignatures.map((is) => is.type),
      ])
    case "Suspend":
      return _unstorable(ast.thunk(), depth + 1)
  }
  // a transformation whose stored form is another kind of value (NumberFromString: a number
  // written as text reads back as text) could not give the field's Type back
  if (ast.encoding !== undefined && SchemaAST.toEncoded(ast)._tag !== ast._tag) {
    return "is a transformation: the table would hold its encoded form, and a read would give that back"
  }
  return undefined
}

/** Why the field `name` of model `table` cannot be a column, with what to use instead; undefined when it can. */
export const unstorableField = (
  table: string,
  name: string,
  ast: SchemaAST.AST,
  column: string | undefined,
): string | undefined => {
  if (isDateField(ast)) {
    if (column === undefined || timeKindOf(column) !== undefined) return undefined
    return `model ${table}: field "${name}" is a Schema.Date: columns: { ${name}: ${
      JSON.stringify(column)
    } } cannot give it back as a Date; use "timestamptz" (the default), "timestamp" or "date", or make the field a Schema.String`
  }
  const reason = _unstorable(ast, 0)
  if (reason === undefined) return undefined
  return `model ${table}: field "${name}" ${reason}. Use JSON types (Schema.String, Number, Boolean, Literals, ` +
    `Struct, Array, NullOr, optional), a whole field of Schema.Date (a timestamptz column, read as a Date), or ` +
    `Schema.String for the rest (a big integer as text, with columns: { ${name}: "numeric" } for SQL arithmetic; ` +
    `a date inside a JSON value as its ISO text), converting in the handler`
}
