import { Effect, Schema } from "effect"
import { defineCommand, NotFound } from "../../../mod.ts"
import { Item, ItemDeleted } from "../model.ts"

export default defineCommand({
  name: "DeleteItem",
  input: Schema.Struct({ id: Schema.String }),
  output: Schema.Struct({ id: Schema.String, deleted: Schema.Boolean }),
  handle: (input, ctx) =>
    Effect.gen(function* () {
      const item = yield* ctx.db.get(Item, input.id)
      if (!item) return yield* new NotFound({ message: `no item ${input.id}` })
      yield* ctx.emit(ItemDeleted, { id: input.id })
      return { id: input.id, deleted: true }
    }),
})
