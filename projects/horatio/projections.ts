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
        yield* db.incrementOrInsert(Tag, { id: tag, item_count: 1 }, "item_count")
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
        yield* db.incrementOrInsert(
          Guest,
          { id: e.data.author, comment_count: 1, first_seen_at: createdAt },
          "comment_count",
        )
      }
    })),
  defineProjection(ItemDeleted, (e, db) => db.softDelete(Item, e.data.id, e.recordedAt)),
]
