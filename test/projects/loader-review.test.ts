/**
 * What the loader accepts from a project folder: two models naming one table are refused (they
 * would share one table, each migration loosening the other's columns), and a host folder that is
 * a symlink to a directory is a host folder like any other (deployments link sites in).
 */
import { Effect } from "effect"
import { mkdir, symlink } from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { loadProject } from "../../src/projects/loader.ts"
import { notesProject, writeTempProject } from "../support/temp-project.ts"

describe("loadProject", () => {
  it("refuses two models declaring one table, naming it", async () => {
    const temp = await writeTempProject(notesProject({
      name: "twotables",
      hosts: [],
      projection: "(e, db) => db.insert(Note, e.data)",
      declarations: `export const Price = defineModel("note", { id: Schema.String, price: Schema.Number })`,
      models: ["Price"],
    }))
    try {
      const error = await Effect.runPromise(Effect.flip(loadProject(temp.dir, undefined)))
      expect(error._tag).toBe("ProjectLoadError")
      expect(error.message).toBe("models declares table note twice, as two different models")
    } finally {
      await temp.remove()
    }
  })

  it("takes a host folder that is a symlink to a directory, and skips one to a file", async () => {
    const temp = await writeTempProject(notesProject({
      name: "linkedhosts",
      hosts: ["plain.example.com"],
      projection: "(e, db) => db.insert(Note, e.data)",
    }))
    try {
      const site = join(temp.root, "site")
      await mkdir(site)
      await symlink(site, join(temp.dir, "hosts", "linked.example.com"))
      await Deno.writeTextFile(join(temp.root, "file.txt"), "x")
      await symlink(join(temp.root, "file.txt"), join(temp.dir, "hosts", "file.example.com"))
      const project = await Effect.runPromise(loadProject(temp.dir, undefined))
      expect([...project.hostDirs.keys()].sort()).toEqual(["linked.example.com", "plain.example.com"])
    } finally {
      await temp.remove()
    }
  })
})
