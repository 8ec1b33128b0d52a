import { Effect, Schema } from "effect"
import { defineCommand } from "../../../mod.ts"
import { inputs, ItemSubmitted } from "../model.ts"

export default defineCommand({
  name: "SubmitItem",
  input: Schema.Struct({
    title: inputs.Title,
    link: Schema.optional(Schema.String.check(Schema.isPattern(/^https?:\/\/\S+$/))),
    extract: Schema.optional(Schema.String.check(Schema.isMaxLength(2000))),
    ownerComment: Schema.optional(Schema.String.check(Schema.isMaxLength(2000))),
    tags: Schema.optional(Schema.Array(inputs.TagName).check(Schema.isMaxLength(10))),
  }),
  output: Schema.Struct({ id: Schema.String }),
  handle: (input, ctx) =>
    Effect.gen(function* () {
      const id = crypto.randomUUID()
      yield* ctx.emit(ItemSubmitted, { id, ...input, tags: [...new Set(input.tags ?? [])] })
      return { id }
    }),
})
