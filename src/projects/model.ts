/**
 * Models: read tables declared with an Effect Schema. The framework derives each table
 * (host column first, primary key (host, id), optional soft delete, extra indexes) from it.
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

/** Postgres keeps the first 63 bytes of a name (NAMEDATALEN - 1); a model's names are ASCII. */
const NAME_BYTES = 63

/**
 * The name the DDL gives a model's index: the table and the columns joined by `_`, as every release
 * has named it (another scheme would build every existing index again under its new name).
 */
export const indexNameOf = (table: string, columns: ReadonlyArray<string>): string =>
  `${table}_${columns.join("_")}_idx`

/** The host index earlier versions made on every model table (each migration drops it). */
export const formerHostIndexOf = (table: string): string => `${table}_host_idx`

/** A relation a model's table brings into its project's schema, named as Postgres stores it. */
export interface ModelRelation {
  readonly name: string
  readonly what: string
}

/**
 * The relations of a model's table: the table, its primary key's index, the host index earlier
 * versions made (dropped at each migration) and its extra indexes. Tables and indexes share one
 * namespace per schema: of two named alike, `create … if not exists` keeps the first and skips the
 * second without a word.
 */
export const relationsOf = (table: string, options: ModelOptions): ReadonlyArray<ModelRelation> => [
  { name: table, what: `table ${table}` },
  // Postgres shortens the table's name to fit the suffix
  { name: `${table.slice(0, NAME_BYTES - "_pkey".length)}_pkey`, what: `the primary key of ${table}` },
  { name: formerHostIndexOf(table).slice(0, NAME_BYTES), what: `the former host index of ${table}` },
  ...(options.indexes ?? []).map((columns) => ({
    name: indexNameOf(table, columns).slice(0, NAME_BYTES),
    what: `index ${JSON.stringify(columns)} of ${table}`,
  })),
]

/** Two relations named alike, said as a refusal's reason; undefined when every name is its own. */
export const relationClash = (relations: ReadonlyArray<ModelRelation>): string | undefined => {
  const seen = new Map<string, ModelRelation>()
  for (const relation of relations) {
    const first = seen.get(relation.name)
    if (first) {
      return `${first.what} and ${relation.what} would both be named ${relation.name} (an index is named ` +
        `after its table and columns joined by "_", cut at ${NAME_BYTES} characters), and Postgres would ` +
        `keep only the first: rename a field or a table, or drop one of the indexes`
    }
    seen.set(relation.name, relation)
  }
  return undefined
}

/** An index's columns must be the model's (or `deleted_at` with soft delete), at least one. */
const badIndex = (
  table: string,
  fields: ReadonlyArray<string>,
  options: ModelOptions,
): string | undefined => {
  const columns = options.softDelete ? [...fields, "deleted_at"] : fields
  for (const index of options.indexes ?? []) {
    if (index.length === 0) {
      return `model ${table}: an index needs at least one column (it is (host, …columns))`
    }
    const unknown = index.find((column) => !columns.includes(column))
    if (unknown !== undefined) {
      return `model ${table}: index ${
        JSON.stringify(index)
      } names "${unknown}", which is not a column of the ` +
        `model (${columns.join(", ")})`
    }
  }
  const clash = relationClash(relationsOf(table, options))
  return clash && `model ${table}: ${clash}`
}

/**
 * Declares a read table. Its fields are JSON types, or a whole-field `Schema.Date` (a timestamptz
 * column, read back as a Date); anything a table could not give back as its Schema says (a
 * BigInt, a Uint8Array, a Date inside a JSON value, a transformation) is refused here, naming the field,
 * and so is an index on a column the model does not have, or one whose name another of its relations takes.
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
  const indexRefusal = badIndex(table, Object.keys(fields), options)
  if (indexRefusal) throw new Error(indexRefusal)
  return { _tag: "Model", table, schema, options }
}
