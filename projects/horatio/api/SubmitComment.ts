import { Effect, Schema } from "effect"
import { defineCommand, NotFound } from "../../../mod.ts"
import { CommentSubmitted, Item } from "../model.ts"

export default defineCommand({
  name: "SubmitComment",
  input: Schema.Struct({
    itemId: Schema.String,
    text: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(5000)),
    author: Schema.optional(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64))),
  }),
  output: Schema.Struct({ id: Schema.String }),
  handle: (input, ctx) =>
    Effect.gen(function* () {
      const item = yield* ctx.db.get(Item, input.itemId)
      if (!item) return yield* new NotFound({ message: `no item ${input.itemId}` })
      const id = crypto.randomUUID()
      yield* ctx.emit(CommentSubmitted, { id, ...input })
      return { id }
    }),
})
