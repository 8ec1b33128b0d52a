import { Effect, Schema } from "effect"
import { defineCommand } from "../../../mod.ts"
import { PostCreated } from "../model.ts"

export default defineCommand({
  name: "CreatePost",
  input: Schema.Struct({
    title: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)),
    body: Schema.String.check(Schema.isMaxLength(100_000)),
  }),
  output: Schema.Struct({ id: Schema.String }),
  handle: (input, ctx) =>
    Effect.gen(function* () {
      const id = crypto.randomUUID()
      yield* ctx.emit(PostCreated, { id, ...input })
      return { id }
    }),
})
