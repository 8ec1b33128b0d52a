import { Effect, Schema } from "effect"
import { defineQuery, NotFound } from "../../../mod.ts"
import { Comment, Item } from "../model.ts"
import { FeedItem, toFeedItem } from "./GetFeed.ts"

const CommentOut = Schema.Struct({
  id: Schema.String,
  text: Schema.String,
  author: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
})

export default defineQuery({
  name: "GetItem",
  input: Schema.Struct({ id: Schema.String }),
  output: Schema.Struct({ item: FeedItem, comments: Schema.Array(CommentOut) }),
  handle: (input, ctx) =>
    Effect.gen(function* () {
      // both reads at once: sent in one turn, they travel together (one round trip, not two)
      const [item, comments] = yield* Effect.all([
        ctx.db.get(Item, input.id),
        ctx.db.list(Comment, { where: { item_id: input.id }, orderBy: [["created_at", "asc"]] }),
      ], { concurrency: "unbounded" })
      if (!item) return yield* new NotFound({ message: `no item ${input.id}` })
      return {
        item: toFeedItem(item),
        comments: comments.map((c) => ({
          id: c.id,
          text: c.text,
          author: c.author,
          createdAt: c.created_at,
        })),
      }
    }),
})
