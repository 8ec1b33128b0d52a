/**
 * `deno task replay` end to end, as a subprocess: on a scratch Postgres database beside a
 * running server (exit codes, findings printed), and on an embedded PGlite data directory
 * (refused while a server holds it, usable once it stopped).
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { storeFromEnv } from "../../src/audit/connect.ts"
import { eventHash } from "../../src/store/event-hash.ts"
import { rowToStoredEvent } from "../../src/store/event-log.ts"
import { PgliteLive } from "../../src/store/pglite.ts"
import { PostgresLive } from "../../src/store/postgres.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { checkService } from "../support/services.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

const CONFIG = "./test/fixtures/audit/config.json"
const BLOG = "blog.example.com"

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const replay = async (args: ReadonlyArray<string>, env: Record<string, string>): Promise<Run> => {
  const clean = { ...Deno.env.toObject() }
  delete clean.DATABASE_URL
  delete clean.HAMLET_DATA
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/audit/cli.ts", "--config", CONFIG, ...args],
    env: { ...clean, ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output()
  const decode = (b: Uint8Array) => new TextDecoder().decode(b)
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) }
}

const hasPostgres = await checkService("postgres")

describe.skipIf(!hasPostgres)("replay CLI on postgres", () => {
  const scope = Effect.runSync(Scope.make())
  let server: TestServer
  let env: Record<string, string>
  let dir: string
  let itemId: string

  beforeAll(async () => {
    const url = await Effect.runPromise(Scope.provide(scope)(scratchPostgresUrl))
    env = { DATABASE_URL: url }
    server = await startTestServer({ database: PostgresLive(url), configPath: CONFIG })
    dir = await mkdtemp(join(tmpdir(), "hamlet-replay-"))
    for (const title of ["first", "second", "third"]) {
      const res = await server.call(BLOG, "/api/SubmitItem", {
        method: "POST",
        body: JSON.stringify({ title, tags: ["t"] }),
      })
      itemId ??= (await res.json()).id
    }
  })
  afterAll(async () => {
    await server?.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it("lists events as a table or NDJSON, narrowed by --from/--to", async () => {
    const table = await replay(["--host", BLOG], env)
    expect(table.code).toBe(0)
    expect(table.stdout.split("\n")[0]).toMatch(/^seq\s+recorded at/)
    expect(table.stdout).toMatch(/\n3\s+\S+Z\s+item-/)
    const ndjson = await replay(["--host", BLOG, "--format", "ndjson", "--from", "2", "--to", "2"], env)
    expect(ndjson.stdout.trim().split("\n").map((l) => JSON.parse(l).seq)).toEqual([2])
  })

  it("exits 0 on a clean host and on its exported file", async () => {
    const verify = await replay(["--host", BLOG, "--verify"], env)
    expect(verify).toMatchObject({ code: 0 })
    expect(verify.stdout).toMatch(/chain: ok — 3 events/)
    expect(verify.stdout).toMatch(/projections: ok/)
    const file = join(dir, "blog.ndjson")
    await writeFile(file, (await replay(["--host", BLOG, "--format", "ndjson"], env)).stdout)
    expect((await replay(["--verify-file", file], {})).code).toBe(0)
    await writeFile(file, (await Deno.readTextFile(file)).replace('"title":"second"', '"title":"2nd"'))
    const tampered = await replay(["--verify-file", file], {})
    expect(tampered.code).toBe(1)
    expect(tampered.stdout).toMatch(/BROKEN at seq 2/)
  })

  it("exits 1 with the first broken seq when an event was tampered with in SQL", async () => {
    const [original] = await server.sql`select data from hamlet_events where host = ${BLOG} and seq = 2`
    await server.sql`update hamlet_events set data = jsonb_set(data, '{title}', '"forged"')
      where host = ${BLOG} and seq = 2`
    try {
      const run = await replay(["--host", BLOG, "--verify"], env)
      expect(run.code).toBe(1)
      expect(run.stdout).toMatch(/chain: BROKEN at seq 2/)
      const rebuild = await replay(["--host", BLOG, "--rebuild"], env)
      expect(rebuild.code).toBe(1)
      expect(rebuild.stdout).toMatch(/refused/)
    } finally {
      await server.sql`update hamlet_events set data = ${server.sql.json(original.data)}
        where host = ${BLOG} and seq = 2`
    }
  })

  it("exits 1 naming the event when a logged event no longer matches its Schema", async () => {
    // the last event's data made unreadable by the project's Schema, its hash made again: the chain
    // holds, as it does after a code change the log's old events no longer fit
    const [last] = await server
      .sql`select * from hamlet_events where host = ${BLOG} order by seq desc limit 1`
    const [prev] = await server.sql`select hash from hamlet_events where host = ${BLOG} and seq = ${
      Number(last.seq) - 1
    }`
    const stored = rowToStoredEvent(last)
    const data = { ...(stored.data as object), title: 42 }
    const hash = eventHash(String(prev.hash), {
      ...stored,
      data,
      recordedAt: stored.recordedAt.toISOString(),
    })
    await server.sql`update hamlet_events set data = ${server.sql.json(data)}, hash = ${hash}
      where host = ${BLOG} and seq = ${last.seq}`
    try {
      expect((await replay(["--host", BLOG, "--verify", "--chain-only"], env)).code).toBe(0)
      const run = await replay(["--host", BLOG, "--verify"], env)
      expect(run.stderr).toContain(`at seq ${last.seq} of ${BLOG} does not match its Schema`)
      expect(run.code).toBe(1)
    } finally {
      await server.sql`update hamlet_events set data = ${server.sql.json(last.data)}, hash = ${last.hash}
        where host = ${BLOG} and seq = ${last.seq}`
    }
  })

  it("exits 1 when the log's first event was deleted, and --rebuild refuses", async () => {
    const [row] = await server.sql`delete from hamlet_events where host = ${BLOG} and seq = 1 returning *`
    try {
      const run = await replay(["--host", BLOG, "--verify", "--chain-only"], env)
      expect(run.code).toBe(1)
      expect(run.stdout).toMatch(/chain: BROKEN at seq 1 — 2 events, seq 2\.\.3/)
      expect(run.stdout).toContain("missing at seq 1: seq 1 is missing")
      const rebuild = await replay(["--host", BLOG, "--rebuild"], env)
      expect(rebuild.code).toBe(1)
      expect(rebuild.stdout).toMatch(/chain: BROKEN at seq 1/)
      expect(rebuild.stdout).toMatch(/refused/)
    } finally {
      await server.sql`insert into hamlet_events ${server.sql(row)}`
    }
    expect((await replay(["--host", BLOG, "--verify", "--chain-only"], env)).code).toBe(0)
  })

  it("--verify-file says a file is partial, and with --from checks it starts where it was taken", async () => {
    const file = join(dir, "blog-from-2.ndjson")
    await writeFile(file, (await replay(["--host", BLOG, "--format", "ndjson", "--from", "2"], env)).stdout)
    const partial = await replay(["--verify-file", file], {})
    expect(partial.code).toBe(0)
    expect(partial.stdout).toMatch(/chain: ok — 2 events, seq 2\.\.3, .*partial: starts at seq 2, not 1/)
    expect((await replay(["--verify-file", file, "--from", "2"], {})).code).toBe(0)
    const whole = await replay(["--verify-file", file, "--from", "1"], {})
    expect(whole.code).toBe(1)
    expect(whole.stdout).toMatch(/chain: BROKEN at seq 1/)
    expect(whole.stdout).toContain("missing at seq 1: seq 1 is missing")
    // only --from says what the file should be; the other bounds would be silently ignored
    expect((await replay(["--verify-file", file, "--stream", "x"], {})).code).toBe(2)
  })

  it("--verify-file checks a partial export's first event against its prevHash: an edit fails", async () => {
    const [seq1] = await server.sql`select hash from hamlet_events where host = ${BLOG} and seq = 1`
    const file = join(dir, "blog-2-3.ndjson")
    const text =
      (await replay(["--host", BLOG, "--format", "ndjson", "--from", "2", "--to", "3"], env)).stdout
    expect(JSON.parse(text.split("\n")[0]).prevHash).toBe(seq1.hash)
    await writeFile(file, text)
    const intact = await replay(["--verify-file", file, "--from", "2"], {})
    expect(intact.code).toBe(0)
    expect(intact.stdout).toContain(
      `prevHash ${seq1.hash}, taken on trust: compare it with the live log's hash at seq 1`,
    )
    // the reviewer's repro: the first event's data edited, its stored hash (the live log's) kept
    await writeFile(file, text.replace(/"data":\{[^}]*\}/, '"data":{"forged":true}'))
    const forged = await replay(["--verify-file", file, "--from", "2"], {})
    expect(forged.code).toBe(1)
    expect(forged.stdout).toMatch(/chain: BROKEN at seq 2/)
    // a file exported before lines carried prevHash is checked from its second event, says what
    // it could not check, and exits 3: not a pass for a script
    await writeFile(file, text.replaceAll(/"prevHash":"[0-9a-f]{64}",/g, ""))
    const old = await replay(["--verify-file", file], {})
    expect(old.code).toBe(3)
    expect(old.stdout).toContain("the content of its first event, seq 2, was NOT checked")
    // the first line's prevHash taken off, the edit kept: the later lines' prevHash gives it away
    const lines = text.replace(/"data":\{[^}]*\}/, '"data":{"forged":true}').split("\n")
    lines[0] = lines[0].replace(/"prevHash":"[0-9a-f]{64}",/, "")
    await writeFile(file, lines.join("\n"))
    const stripped = await replay(["--verify-file", file, "--from", "2"], {})
    expect(stripped.code).toBe(1)
    expect(stripped.stdout).toContain("tampered at seq 2: seq 2 has no prevHash while later lines do")
  })

  it("exits 1 printing each drifted cell, and 0 after --rebuild repaired it", async () => {
    await server
      .sql`update horatio.microblog_item set title = 'edited' where host = ${BLOG} and id = ${itemId}`
    const drift = await replay(["--host", BLOG, "--verify"], env)
    expect(drift.code).toBe(1)
    expect(drift.stdout).toContain(
      `horatio.microblog_item id="${itemId}" title: live "edited" rebuilt "first"`,
    )
    const rebuild = await replay(["--host", BLOG, "--rebuild"], env)
    expect(rebuild.code).toBe(0)
    expect(rebuild.stdout).toMatch(/1 tables repaired/)
    expect((await replay(["--host", BLOG, "--verify"], env)).code).toBe(0)
  })

  it("prints the read tables as they were --at a seq", async () => {
    const run = await replay(["--host", BLOG, "--at", "1", "--format", "ndjson"], env)
    expect(run.code).toBe(0)
    const items = run.stdout.trim().split("\n").map((l) => JSON.parse(l))
      .filter((l) => l.table === "horatio.microblog_item")
    expect(items.map((l) => l.row.title)).toEqual(["first"])
    const past = await replay(["--host", BLOG, "--at", "999999"], env)
    expect(past.stdout).toMatch(/# state at seq \d+, where the log ends \(asked for 999999\)/)
  })

  it("exits 2 on usage errors and unknown hosts", async () => {
    expect((await replay([], env)).code).toBe(2)
    expect((await replay(["--host", BLOG, "--verify", "--rebuild"], env)).code).toBe(2)
    expect((await replay(["--host", BLOG, "--verify", "--from", "2"], env)).code).toBe(2)
    expect((await replay(["--host", BLOG, "--at", "yesterday"], env)).code).toBe(2)
    const unknown = await replay(["--host", "nowhere.example.com"], env)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/no event log for host nowhere.example.com/)
  })
})

// 60 s each: a server on PGlite in this process, and the CLI (loading PGlite too) as a subprocess
describe("replay CLI on an embedded data directory", () => {
  const dirs: Array<string> = []
  const _tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), "hamlet-data-"))
    dirs.push(dir)
    return dir
  }
  const _serve = (dir: string) =>
    startTestServer({ database: PgliteLive(join(dir, "pg"), join(dir, "pglite.url")), configPath: CONFIG })
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })

  it("refuses while a server holds the store, and works once it stopped", async () => {
    const dir = await _tempDir()
    const server = await _serve(dir)
    try {
      await server.call(BLOG, "/api/SubmitItem", { method: "POST", body: JSON.stringify({ title: "x" }) })
      const busy = await replay(["--host", BLOG, "--verify"], { HAMLET_DATA: dir })
      expect(busy.code).toBe(2)
      expect(busy.stderr).toMatch(/is open by another process \(pid \d+, holding .*pg\.lock\).*stop it first/)
    } finally {
      await server.close()
    }
    const run = await replay(["--host", BLOG, "--verify"], { HAMLET_DATA: dir })
    expect(run.stdout).toMatch(/chain: ok — 1 events/)
    expect(run.code).toBe(0)
  }, 60_000)

  it("refuses while a server holds the store even when its pglite.url is gone", async () => {
    // a second server's shutdown used to delete the first's pglite.url, the CLI's only sign
    const dir = await _tempDir()
    const server = await _serve(dir)
    try {
      await server.call(BLOG, "/api/SubmitItem", { method: "POST", body: JSON.stringify({ title: "x" }) })
      await rm(join(dir, "pglite.url"))
      const busy = await replay(["--host", BLOG, "--verify"], { HAMLET_DATA: dir })
      expect(busy.stderr).toMatch(/is open by another process/)
      expect(busy.code).toBe(2)
    } finally {
      await server.close()
    }
    expect((await replay(["--host", BLOG, "--verify"], { HAMLET_DATA: dir })).code).toBe(0)
  }, 60_000)

  it("a second server on the store is refused, and the first keeps serving and holding it", async () => {
    const dir = await _tempDir()
    const first = await _serve(dir)
    try {
      await first.call(BLOG, "/api/SubmitItem", { method: "POST", body: JSON.stringify({ title: "kept" }) })
      const second = await _serve(dir).then((s) => s, (e: unknown) => e)
      if (!(second instanceof Error)) await (second as { close: () => Promise<void> }).close()
      expect(second).toMatchObject({
        _tag: "DataDirInUse",
        message: expect.stringMatching(/is open by another/),
      })
      expect(await readFile(join(dir, "pglite.url"), "utf8")).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:/)
      expect((await replay(["--host", BLOG, "--verify"], { HAMLET_DATA: dir })).code).toBe(2)
    } finally {
      await first.close()
    }
    const run = await replay(["--host", BLOG, "--verify"], { HAMLET_DATA: dir })
    expect(run.stdout).toMatch(/chain: ok — 1 events/)
    expect(run.code).toBe(0)
  }, 60_000)

  it("holds the store while it uses it: a server starting meanwhile is refused", async () => {
    const dir = await _tempDir()
    await (await _serve(dir)).close()
    const scope = Effect.runSync(Scope.make())
    try {
      const store = await Effect.runPromise(storeFromEnv({ dataDir: dir }))
      await Effect.runPromise(Layer.buildWithScope(store.layer, scope))
      const server = await _serve(dir).then((s) => s, (e: unknown) => e)
      if (!(server instanceof Error)) await (server as { close: () => Promise<void> }).close()
      expect(server).toMatchObject({ _tag: "DataDirInUse" })
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
    await (await _serve(dir)).close()
  }, 60_000)
})
