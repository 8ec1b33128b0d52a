import { Effect, Schema } from "effect"
import { defineCommand } from "../../../mod.ts"
import { Profile, ProfileUpdated } from "../model.ts"

export default defineCommand({
  name: "UpdateProfile",
  input: Schema.Struct({
    id: Schema.String.check(Schema.isPattern(/^[a-z0-9-]{1,64}$/)),
    name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)),
    /** Left out: the profile keeps its bio; null: it has none. */
    bio: Schema.optional(Schema.NullOr(Schema.String.check(Schema.isMaxLength(5000)))),
    /** Left out: the profile keeps its roles. */
    roles: Schema.optional(Schema.Array(Schema.String)),
  }),
  output: Schema.Struct({ id: Schema.String }),
  handle: (input, ctx) =>
    Effect.gen(function* () {
      // the event records the whole profile as it becomes: replay needs no earlier state
      const current = yield* ctx.db.get(Profile, input.id)
      const bio = input.bio === undefined ? current?.bio : input.bio
      yield* ctx.emit(ProfileUpdated, {
        id: input.id,
        name: input.name,
        ...(bio == null ? {} : { bio }),
        roles: input.roles ?? current?.roles ?? [],
      })
      return { id: input.id }
    }),
})
