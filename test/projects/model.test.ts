/**
 * defineModel refuses, at once and naming the field, what a table could store but never give
 * back as the model's Schema says: values with no JSON form, and transformations; and indexes
 * Postgres would not make as declared (on a column the model lacks, or named like another).
 */
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { defineModel } from "../../src/projects/model.ts"

describe("defineModel", () => {
  it("takes JSON types and a whole-field Schema.Date, optional or nullable, in a time column", () => {
    expect(() =>
      defineModel("fine", {
        id: Schema.String,
        n: Schema.Finite,
        trimmed: Schema.Trim,
        tags: Schema.Array(Schema.Literals(["a", "b"])),
        meta: Schema.Struct({ pages: Schema.Number, extra: Schema.optional(Schema.Unknown) }),
        at: Schema.Date,
        when: Schema.optional(Schema.NullOr(Schema.Date)),
        day: Schema.Date,
      }, { columns: { day: "date" }, indexes: [["n"], ["at", "id"], ["day", "n"]] })
    ).not.toThrow()
  })

  it("refuses two indexes that would share a name, naming the model, both indexes and the name", () => {
    // both would be tagged_a_b_idx: `create index if not exists` made the first and skipped the second
    expect(() =>
      defineModel("tagged", { id: Schema.String, a: Schema.String, b: Schema.String, a_b: Schema.String }, {
        indexes: [["a_b"], ["a", "b"]],
      })
    ).toThrow(
      'model tagged: index ["a_b"] of tagged and index ["a","b"] of tagged would both be named tagged_a_b_idx',
    )
    // Postgres keeps a name's first 63 characters: two long ones alike that far are one name
    const long = "a_column_name_long_enough_to_reach_the_postgres_name_limit"
    expect(() =>
      defineModel("tagged", { id: Schema.String, [long]: Schema.String, [`${long}_2`]: Schema.String }, {
        indexes: [[long], [`${long}_2`]],
      })
    ).toThrow(/would both be named tagged_a_column_name_long_enough_to_reach_the_postgres_name_lim /)
  })

  it("refuses an index on a column the model does not have, and an index of no column", () => {
    const fields = { id: Schema.String, title: Schema.String }
    expect(() => defineModel("titled", fields, { indexes: [["title", "tilte"]] })).toThrow(
      'model titled: index ["title","tilte"] names "tilte", which is not a column of the model (id, title)',
    )
    expect(() => defineModel("titled", fields, { indexes: [["deleted_at"]] })).toThrow(/names "deleted_at"/)
    expect(() => defineModel("titled", fields, { indexes: [["host"]] })).toThrow(/names "host"/)
    expect(() => defineModel("titled", fields, { indexes: [[]] })).toThrow(
      /an index needs at least one column/,
    )
    // soft delete's column is the model's
    expect(() => defineModel("titled", fields, { softDelete: true, indexes: [["deleted_at"]] })).not.toThrow()
  })

  const refused: ReadonlyArray<[string, Schema.Top, RegExp, Record<string, string>?]> = [
    ["a BigInt", Schema.BigInt, /field "x" is a BigInt.*Schema\.String/],
    [
      "a Date inside a jsonb value",
      Schema.Struct({ at: Schema.Date }),
      /field "x" holds a Schema\.Date inside/,
    ],
    ["a Uint8Array", Schema.Uint8Array, /field "x" holds a Uint8Array/],
    ["a transformation", Schema.NumberFromString, /field "x" is a transformation/],
    ["a Date in a text column", Schema.Date, /field "x" is a Schema\.Date: columns: \{ x: "text" \}/, {
      x: "text",
    }],
  ]
  for (const [what, field, message, columns] of refused) {
    it(`refuses ${what}, naming the field and what to use instead`, () => {
      expect(() => defineModel("refused", { id: Schema.String, x: field }, columns ? { columns } : {}))
        .toThrow(message)
    })
  }
})
