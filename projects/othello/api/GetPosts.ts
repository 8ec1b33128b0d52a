import { Effect, Schema } from "effect"
import { defineQuery } from "../../../mod.ts"
import { Post } from "../model.ts"

export default defineQuery({
  name: "GetPosts",
  input: Schema.Struct({}),
  output: Schema.Struct({
    posts: Schema.Array(
      Schema.Struct({
        id: Schema.String,
        title: Schema.String,
        body: Schema.String,
        createdAt: Schema.String,
      }),
    ),
  }),
  handle: (_input, ctx) =>
    ctx.db.list(Post, { orderBy: [["created_at", "desc"]], limit: 100 }).pipe(
      Effect.map((rows) => ({
        posts: rows.map((p) => ({ id: p.id, title: p.title, body: p.body, createdAt: p.created_at })),
      })),
    ),
})
