import { Effect, Schema } from "effect"
import { defineQuery, NotFound } from "../../../mod.ts"
import { Profile } from "../model.ts"

export default defineQuery({
  name: "GetProfile",
  input: Schema.Struct({ id: Schema.String }),
  output: Schema.Struct({
    id: Schema.String,
    name: Schema.String,
    bio: Schema.NullOr(Schema.String),
    roles: Schema.Array(Schema.String),
    updatedAt: Schema.String,
  }),
  handle: (input, ctx) =>
    Effect.gen(function* () {
      const p = yield* ctx.db.get(Profile, input.id)
      if (!p) return yield* new NotFound({ message: `no profile ${input.id}` })
      return { id: p.id, name: p.name, bio: p.bio, roles: p.roles, updatedAt: p.updated_at }
    }),
})
