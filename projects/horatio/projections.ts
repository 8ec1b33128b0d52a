/** How Horatio's events shape its read tables (live, and in audit rebuilds). */
import { Effect } from "effect"
import { defineProjection } from "../../mod.ts"
import { Comment, CommentSubmitted, Guest, Item, ItemDeleted, ItemSubmitted, ItemTag, Tag } from "./model.ts"

export const projections = [
  defineProjection(ItemSubmitted, (e, db) =>
    Effect.gen(function* () {
      const createdAt = e.recordedAt.toISOString()
      yield* db.insert(Item, {
        id: e.data.id,
        title: e.data.title,
        link: e.data.link ?? null,
        extract: e.data.extract ?? null,
        owner_comment: e.data.ownerComment ?? null,
        tags: e.data.tags,
        comment_count: 0,
        created_at: createdAt,
      })
      for (const tag of new Set(e.data.tags)) {
        yield* db.insert(ItemTag, { id: `${e.data.id}:${tag}`, item_id: e.data.id, tag })
        const existing = yield* db.get(Tag, tag)
        if (existing) yield* db.increment(Tag, tag, "item_count")
        else yield* db.insert(Tag, { id: tag, item_count: 1 })
      }
    })),
  defineProjection(CommentSubmitted, (e, db) =>
    Effect.gen(function* () {
      const createdAt = e.recordedAt.toISOString()
      yield* db.insert(Comment, {
        id: e.data.id,
        item_id: e.data.itemId,
        text: e.data.text,
        author: e.data.author ?? null,
        created_at: createdAt,
      })
      yield* db.increment(Item, e.data.itemId, "comment_count")
      if (e.data.author) {
        const guest = yield* db.get(Guest, e.data.author)
        if (guest) yield* db.increment(Guest, e.data.author, "comment_count")
        else yield* db.insert(Guest, { id: e.data.author, comment_count: 1, first_seen_at: createdAt })
      }
    })),
  defineProjection(ItemDeleted, (e, db) => db.softDelete(Item, e.data.id, e.recordedAt)),
]
