/** Horatio: a microblog. Handlers live in api/, one per file. */
import { defineProject } from "../../mod.ts"
import { Comment, CommentSubmitted, Guest, Item, ItemDeleted, ItemSubmitted, ItemTag, Tag } from "./model.ts"
import { projections } from "./projections.ts"

export default defineProject({
  name: "horatio",
  models: [Item, Comment, Guest, Tag, ItemTag],
  events: [ItemSubmitted, CommentSubmitted, ItemDeleted],
  projections,
})
