/** Othello's read tables and events: a theatre site with posts and actor profiles. */
import { Schema } from "effect"
import { defineEvent, defineModel } from "../../mod.ts"

export const Post = defineModel("theatre_post", {
  id: Schema.String,
  title: Schema.String,
  body: Schema.String,
  created_at: Schema.String,
}, { softDelete: true, columns: { created_at: "timestamptz" } })

export const Profile = defineModel("actor_profile", {
  id: Schema.String,
  name: Schema.String,
  bio: Schema.NullOr(Schema.String),
  roles: Schema.Array(Schema.String),
  updated_at: Schema.String,
}, { columns: { updated_at: "timestamptz" } })

export const PostCreated = defineEvent(
  "PostCreated",
  Schema.Struct({ id: Schema.String, title: Schema.String, body: Schema.String }),
  (d) => `post-${d.id}`,
  { startsStream: true },
)

export const ProfileUpdated = defineEvent(
  "ProfileUpdated",
  Schema.Struct({
    id: Schema.String,
    name: Schema.String,
    bio: Schema.optional(Schema.String),
    roles: Schema.Array(Schema.String),
  }),
  (d) => `profile-${d.id}`,
)
