/**
 * Models: read tables declared with an Effect Schema. The framework derives each table
 * (host column first, primary key (host, id), host index, optional soft delete) from it.
 */
import { type Duration, Schema } from "effect"
import { unstorableField } from "./model-fields.ts"

/** Fields of a model; `id` is required and is the row key within a host. */
export type ModelFields = Schema.Struct.Fields & { readonly id: Schema.Top }

export interface ModelOptions {
  /** Adds `deleted_at timestamptz`; reads hide soft-deleted rows unless asked. */
  readonly softDelete?: boolean
  /** How long soft-deleted rows are kept before the fleet-wide cleanup purges them. */
  readonly retention?: Duration.Input
  /**
   * Column type overrides, e.g. `{ created_at: "timestamptz" }`. `date`, `timestamp` and
   * `timestamptz` columns of Schema.String fields read back as text, whatever the zones:
   * `2024-03-05`, and ISO-8601 with milliseconds in UTC (`2024-03-05T10:00:00.000Z`); of
   * Schema.Date fields (timestamptz unless overridden), as Dates.
   */
  readonly columns?: Readonly<Record<string, string>>
  /** Extra indexes (column lists, each after `host`), besides the primary key (host, id). */
  readonly indexes?: ReadonlyArray<ReadonlyArray<string>>
}

export interface Model<F extends ModelFields = ModelFields> {
  readonly _tag: "Model"
  readonly table: string
  readonly schema: Schema.Struct<F>
  readonly options: ModelOptions
}

/** The row type of a model. */
export type ModelRow<M> = M extends Model<infer F> ? Schema.Struct<F>["Type"] : never

const IDENTIFIER = /^[a-z][a-z0-9_]{0,62}$/

/**
 * Declares a read table. Its fields are JSON types, or a whole-field `Schema.Date` (a timestamptz
 * column, read back as a Date); anything a table could not give back as its Schema says (a
 * BigInt, a Uint8Array, a Date inside a JSON value, a transformation) is refused here, naming the field.
 *
 * @example
 * ```ts
 * const Post = defineModel("theatre_post", { id: Schema.String, title: Schema.String }, { softDelete: true })
 * ```
 */
export const defineModel = <const F extends ModelFields>(
  table: string,
  fields: F,
  options: ModelOptions = {},
): Model<F> => {
  if (!IDENTIFIER.test(table)) throw new Error(`model table "${table}" must be a lower-case SQL identifier`)
  for (const name of Object.keys(fields)) {
    if (!IDENTIFIER.test(name) || name === "host" || name === "deleted_at") {
      throw new Error(
        `model ${table}: field "${name}" must be a lower-case SQL identifier other than host/deleted_at`,
      )
    }
  }
  const schema = Schema.Struct(fields)
  for (const ps of schema.ast.propertySignatures) {
    const name = String(ps.name)
    const refusal = unstorableField(table, name, ps.type, options.columns?.[name])
    if (refusal) throw new Error(refusal)
  }
  return { _tag: "Model", table, schema, options }
}
