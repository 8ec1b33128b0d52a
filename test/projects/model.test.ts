/**
 * defineModel refuses, at once and naming the field, what a table could store but never give
 * back as the model's Schema says: values with no JSON form, and transformations.
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
      }, { columns: { day: "date" } })
    ).not.toThrow()
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
