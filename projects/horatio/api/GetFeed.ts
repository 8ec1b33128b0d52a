import { Effect, Schema } from "effect"
import { defineQuery } from "../../../mod.ts"
import { Item } from "../model.ts"

export const FeedItem = Schema.Struct({
  id: Schema.String,
  title: Schema.String,
  link: Schema.NullOr(Schema.String),
  extract: Schema.NullOr(Schema.String),
  ownerComment: Schema.NullOr(Schema.String),
  tags: Schema.Array(Schema.String),
  commentCount: Schema.Number,
  createdAt: Schema.String,
})

export const toFeedItem = (row: typeof Item.schema.Type): typeof FeedItem.Type => ({
  id: row.id,
  title: row.title,
  link: row.link,
  extract: row.extract,
  ownerComment: row.owner_comment,
  tags: row.tags,
  commentCount: row.comment_count,
  createdAt: row.created_at,
})

export default defineQuery({
  name: "GetFeed",
  input: Schema.Struct({}),
  output: Schema.Struct({ items: Schema.Array(FeedItem) }),
  handle: (_input, ctx) =>
    ctx.db.list(Item, { orderBy: [["created_at", "desc"], ["id", "desc"]], limit: 50 }).pipe(
      Effect.map((rows) => ({ items: rows.map(toFeedItem) })),
    ),
})
