/** Horatio's read tables and events: a microblog with comments, guests and tags. */
import { Schema } from "effect"
import { defineEvent, defineModel } from "../../mod.ts"

export const Item = defineModel("microblog_item", {
  id: Schema.String,
  title: Schema.String,
  link: Schema.NullOr(Schema.String),
  extract: Schema.NullOr(Schema.String),
  owner_comment: Schema.NullOr(Schema.String),
  tags: Schema.Array(Schema.String),
  comment_count: Schema.Number,
  created_at: Schema.String,
}, {
  softDelete: true,
  retention: "30 days",
  columns: { created_at: "timestamptz" },
  indexes: [["created_at", "id"]],
})

export const Comment = defineModel("item_comment", {
  id: Schema.String,
  item_id: Schema.String,
  text: Schema.String,
  author: Schema.NullOr(Schema.String),
  created_at: Schema.String,
}, { columns: { created_at: "timestamptz" }, indexes: [["item_id"]] })

export const Guest = defineModel("guest", {
  id: Schema.String,
  comment_count: Schema.Number,
  first_seen_at: Schema.String,
}, { columns: { first_seen_at: "timestamptz" } })

export const Tag = defineModel("tag", { id: Schema.String, item_count: Schema.Number })

export const ItemTag = defineModel("item_tag", {
  id: Schema.String,
  item_id: Schema.String,
  tag: Schema.String,
}, {
  indexes: [["tag"]],
})

const Title = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(300))
const TagName = Schema.String.check(Schema.isPattern(/^[a-z0-9][a-z0-9-]{0,31}$/))

export const ItemSubmitted = defineEvent(
  "ItemSubmitted",
  Schema.Struct({
    id: Schema.String,
    title: Title,
    link: Schema.optional(Schema.String),
    extract: Schema.optional(Schema.String),
    ownerComment: Schema.optional(Schema.String),
    tags: Schema.Array(TagName),
  }),
  (d) => `item-${d.id}`,
  { startsStream: true },
)

export const CommentSubmitted = defineEvent(
  "CommentSubmitted",
  Schema.Struct({
    id: Schema.String,
    itemId: Schema.String,
    text: Schema.String,
    author: Schema.optional(Schema.String),
  }),
  (d) => `item-${d.itemId}`,
)

export const ItemDeleted = defineEvent(
  "ItemDeleted",
  Schema.Struct({ id: Schema.String }),
  (d) => `item-${d.id}`,
)

export const inputs = { Title, TagName }
