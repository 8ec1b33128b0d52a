/**
 * Rows as read from a model's table, made what the model's own Schema takes, in one walk:
 * - an optional field (`Schema.optional(X)`, X not accepting null) is a nullable column: its
 *   null is given back as a missing key ("Expected string | undefined" refused `null`); fields
 *   that accept null keep it;
 * - a `Schema.Date` field's column is rendered as ISO text by Postgres (json-rows.ts timeTextOf)
 *   on both read paths, and made a Date again (writes need nothing: postgres.js sends a Date).
 */
import { SchemaAST } from "effect"
import type { Model } from "../projects/model.ts"
import { isDateField, unionMembers } from "../projects/model-fields.ts"

type Row = Record<string, unknown>

const NULL_ACCEPTING = new Set(["Null", "Unknown", "Any"])

const acceptsNull = (ast: SchemaAST.AST): boolean =>
  unionMembers(SchemaAST.toEncoded(ast)).some((member) => NULL_ACCEPTING.has(member._tag))

interface RowPlan {
  /** Fields whose null is read back as a missing key. */
  readonly absentWhenNull: ReadonlyArray<string>
  /** Fields read back as Dates. */
  readonly dates: ReadonlyArray<string>
}

const plans = new WeakMap<Model, RowPlan | null>()

/** What reads of `model` need done to their rows; null when nothing (most models). */
const planOf = (model: Model): RowPlan | null => {
  let plan = plans.get(model)
  if (plan === undefined) {
    const fields = model.schema.ast.propertySignatures
    const absentWhenNull = fields
      .filter((ps) => SchemaAST.isOptional(ps.type) && !acceptsNull(ps.type))
      .map((ps) => String(ps.name))
    const dates = fields.filter((ps) => isDateField(ps.type)).map((ps) => String(ps.name))
    plan = absentWhenNull.length + dates.length === 0 ? null : { absentWhenNull, dates }
    plans.set(model, plan)
  }
  return plan
}

/** Makes, in place, `rows` (or one row) of `model` what its Schema takes; gives `rows` back. */
export const asModelRows = <A>(model: Model, rows: A): A => {
  const plan = planOf(model)
  if (plan === null || rows === undefined || rows === null) return rows
  for (const row of (Array.isArray(rows) ? rows : [rows]) as ReadonlyArray<Row>) {
    for (const name of plan.absentWhenNull) if (row[name] === null) delete row[name]
    for (const name of plan.dates) {
      const value = row[name]
      if (typeof value === "string") row[name] = new Date(value)
    }
  }
  return rows
}
