/** Othello: a theatre site. Handlers live in api/, one per file. */
import { defineProject, defineProjection } from "../../mod.ts"
import { Post, PostCreated, Profile, ProfileUpdated } from "./model.ts"

export default defineProject({
  name: "othello",
  models: [Post, Profile],
  events: [PostCreated, ProfileUpdated],
  projections: [
    defineProjection(
      PostCreated,
      (e, db) => db.insert(Post, { ...e.data, created_at: e.recordedAt.toISOString() }),
    ),
    defineProjection(ProfileUpdated, (e, db) =>
      db.upsert(Profile, {
        id: e.data.id,
        name: e.data.name,
        bio: e.data.bio ?? null,
        roles: e.data.roles,
        updated_at: e.recordedAt.toISOString(),
      })),
  ],
})
