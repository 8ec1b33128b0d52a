/**
 * One process at a time on an embedded data directory: a second store on a directory already
 * open is refused before it reads it, the lock goes with its holder (closed, or killed), and
 * a store's pglite.url is removed on close only while it still names that store.
 */
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { readFile, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import postgres from "postgres"
import { afterAll, describe, expect, it } from "vitest"
import { lockDataDir } from "../../src/store/data-dir-lock.ts"
import { Database } from "../../src/store/database.ts"
import { PgliteLive, startEmbeddedPostgres } from "../../src/store/pglite.ts"

const _query = async (url: string, run: (sql: postgres.Sql) => Promise<unknown>): Promise<unknown> => {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    return await run(sql)
  } finally {
    await sql.end()
  }
}

describe("an embedded data directory", () => {
  const dirs: Array<string> = []
  const _tempDir = async () => {
    const dir = await Deno.makeTempDir({ prefix: "hamlet-datadir-" })
    dirs.push(dir)
    return dir
  }
  afterAll(async () => {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {})
  })

  it("startEmbeddedPostgres() refuses a directory another store holds, and opens it once that one closed", async () => {
    const pgDir = join(await _tempDir(), "pg")
    const first = await startEmbeddedPostgres(pgDir)
    try {
      await _query(first.url, (sql) => sql`create table kept (x int); insert into kept values (1)`.simple())
      const second = await startEmbeddedPostgres(pgDir).then((s) => s, (e: unknown) => e)
      // before the lock, a second PGlite opened the directory and each lost the other's writes
      if (!(second instanceof Error)) await (second as { close: () => Promise<void> }).close()
      expect(second).toMatchObject({
        _tag: "DataDirInUse",
        message: expect.stringMatching(
          new RegExp(
            `^the embedded store ${pgDir} is open by another process \\(pid ${Deno.pid}, holding ${pgDir}\\.lock\\)`,
          ),
        ),
      })
    } finally {
      await first.close()
    }
    const again = await startEmbeddedPostgres(pgDir)
    try {
      expect(await _query(again.url, (sql) => sql`select x from kept`)).toEqual([{ x: 1 }])
    } finally {
      await again.close()
    }
  })

  it("lockDataDir() is free again once the process holding it was killed", async () => {
    const pgDir = join(await _tempDir(), "pg")
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const { lockDataDir } = await import(${
          JSON.stringify(pathToFileURL(resolve("src/store/data-dir-lock.ts")).href)
        })
         await lockDataDir(${JSON.stringify(pgDir)})
         console.log("locked")
         setInterval(() => {}, 60_000)`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn()
    try {
      const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader()
      let out = ""
      while (!out.includes("locked")) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`the lock holder exited: ${out}`)
        out += value
      }
      await expect(lockDataDir(pgDir)).rejects.toMatchObject({
        _tag: "DataDirInUse",
        message: expect.stringContaining(`(pid ${holder.pid}, holding`),
      })
    } finally {
      holder.kill("SIGKILL")
      await holder.status
    }
    // the OS dropped the lock with its process: no stale lock blocks the next start
    const lock = await lockDataDir(pgDir)
    lock.release()
  })

  it("PgliteLive removes its pglite.url on close only while the file still names its store", async () => {
    const dir = await _tempDir()
    const urlFile = join(dir, "pglite.url")
    const _open = async () => {
      const scope = Effect.runSync(Scope.make())
      const context = await Effect.runPromise(
        Layer.buildWithScope(PgliteLive(join(dir, "pg"), urlFile), scope),
      )
      return {
        url: Context.get(context, Database).url,
        close: () => Effect.runPromise(Scope.close(scope, Exit.void)),
      }
    }
    const own = await _open()
    expect((await readFile(urlFile, "utf8")).trim()).toBe(own.url)
    await own.close()
    await expect(readFile(urlFile, "utf8")).rejects.toMatchObject({ code: "ENOENT" })

    const overwritten = await _open()
    await writeFile(urlFile, "postgres://postgres@127.0.0.1:1/postgres\n")
    await overwritten.close()
    expect(await readFile(urlFile, "utf8")).toBe("postgres://postgres@127.0.0.1:1/postgres\n")
  })
})
