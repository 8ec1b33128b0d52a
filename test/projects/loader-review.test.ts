/**
 * What the loader accepts from a project folder: two models naming one table are refused (they
 * would share one table, each migration loosening the other's columns), so are two models whose
 * indexes (or an index and a table) would share a name in the project's schema, and a host folder that is
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

  it("refuses two models whose indexes would share a name in the project's schema, naming both", async () => {
    const temp = await writeTempProject(notesProject({
      name: "clashing",
      hosts: [],
      projection: "(e, db) => db.insert(Note, e.data)",
      declarations: [
        `export const Tag = defineModel("tag", { id: Schema.String, a_b: Schema.String }, { indexes: [["a_b"]] })`,
        `export const TagA = defineModel("tag_a", { id: Schema.String, b: Schema.String }, { indexes: [["b"]] })`,
      ].join("\n"),
      models: ["Tag", "TagA"],
    }))
    try {
      const error = await Effect.runPromise(Effect.flip(loadProject(temp.dir, undefined)))
      expect(error._tag).toBe("ProjectLoadError")
      expect(error.message).toMatch(
        /^models clash in the project's schema: index \["a_b"\] of tag and index \["b"\] of tag_a would both be named tag_a_b_idx/,
      )
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

  it("refuses a limit that is not a positive number, naming it; an undefined one keeps its default", async () => {
    const withLimits = async (limits: string) => {
      const base = notesProject({
        name: "limited",
        hosts: [],
        projection: "(e, db) => db.insert(Note, e.data)",
      })
      const temp = await writeTempProject({
        ...base,
        projectTs: base.projectTs.replace("  events: [Noted],", `  events: [Noted],\n  limits: ${limits},`),
      })
      try {
        return await Effect.runPromise(Effect.result(loadProject(temp.dir, undefined)))
      } finally {
        await temp.remove()
      }
    }
    const nan = await withLimits(`{ handlerTimeoutMs: Number(undefined) }`)
    expect(nan._tag === "Failure" && nan.failure.message).toBe(
      "limits.handlerTimeoutMs must be a positive finite number, got NaN",
    )
    const zero = await withLimits(`{ mailboxSize: 0 }`)
    expect(zero._tag === "Failure" && zero.failure.message).toBe(
      "limits.mailboxSize must be a positive whole number, got 0",
    )
    const unset = await withLimits(`{ handlerTimeoutMs: undefined, idleMs: 1000 }`)
    expect(unset._tag === "Success" && unset.success.limits).toEqual({
      maxBodyBytes: 256 * 1024,
      handlerTimeoutMs: 5_000,
      mailboxSize: 1024,
      idleMs: 1000,
    })
  })
})
