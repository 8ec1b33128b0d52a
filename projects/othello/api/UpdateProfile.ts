import { Effect, Schema } from "effect"
import { defineCommand } from "../../../mod.ts"
import { ProfileUpdated } from "../model.ts"

export default defineCommand({
  name: "UpdateProfile",
  input: Schema.Struct({
    id: Schema.String.check(Schema.isPattern(/^[a-z0-9-]{1,64}$/)),
    name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)),
    bio: Schema.optional(Schema.String.check(Schema.isMaxLength(5000))),
    roles: Schema.optional(Schema.Array(Schema.String)),
  }),
  output: Schema.Struct({ id: Schema.String }),
  handle: (input, ctx) =>
    Effect.gen(function* () {
      yield* ctx.emit(ProfileUpdated, { ...input, roles: input.roles ?? [] })
      return { id: input.id }
    }),
})
