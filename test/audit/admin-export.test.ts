/**
 * The admin export `GET /admin/hosts/<host>/events`: only the owning project's key gets the
 * NDJSON log, which then verifies offline; on PGlite and on Postgres.
 */
import { Effect } from "effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { isFileIntact, verifyFile } from "../../src/audit/verify-file.ts"
import type { StoreKind } from "../support/database.ts"
import { checkService } from "../support/services.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

const HORATIO_KEY = "horatio-audit-key-0123456789"
const OTHELLO_KEY = "othello-audit-key-9876543210"
const EVENTS = "/admin/hosts/blog.example.com/events"
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

const hasPostgres = await checkService("postgres")

const describeAdminExport = (kind: StoreKind) =>
  describe(`admin export on ${kind}`, () => {
    let server: TestServer
    let dir: string
    // the admin API is addressed by path: any Host header reaches it
    const get = (path: string, headers: Record<string, string> = {}) =>
      server.call("admin.invalid", path, { method: "GET", headers })

    beforeAll(async () => {
      server = await startTestServer({ store: kind, configPath: "./test/fixtures/audit/config.json" })
      dir = await mkdtemp(join(tmpdir(), "hamlet-audit-"))
      for (const title of ["a", "b", "c"]) {
        const res = await server.call("blog.example.com", "/api/SubmitItem", {
          method: "POST",
          body: JSON.stringify({ title, tags: ["t"] }),
        })
        expect(res.status).toBe(200)
      }
      await server.call("theatre.example.com", "/api/CreatePost", {
        method: "POST",
        body: JSON.stringify({ title: "Hamlet", body: "tonight" }),
      })
    })
    afterAll(async () => {
      await server?.close()
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    it("refuses a missing key with 401", async () => {
      const res = await get(EVENTS)
      expect(res.status).toBe(401)
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/)
      expect((await res.json()).error.code).toBe("unauthorized")
    })

    it("refuses a wrong key with 401", async () => {
      expect((await get(EVENTS, bearer("not-the-key-at-all-000"))).status).toBe(401)
      expect((await get(EVENTS, { authorization: `Basic ${btoa(`x:${HORATIO_KEY}`)}` })).status).toBe(401)
      expect((await get(EVENTS, bearer(`${HORATIO_KEY}x`))).status).toBe(401)
    })

    it("refuses another project's key with 403", async () => {
      expect((await get(EVENTS, bearer(OTHELLO_KEY))).status).toBe(403)
      expect((await get("/admin/hosts/theatre.example.com/events", bearer(HORATIO_KEY))).status).toBe(403)
    })

    it("answers 404 for an unknown host and an unknown admin route, 400 for a bad host", async () => {
      expect((await get("/admin/hosts/nowhere.example.com/events", bearer(HORATIO_KEY))).status).toBe(404)
      expect((await get("/admin/hosts", bearer(HORATIO_KEY))).status).toBe(404)
      expect((await get("/admin/hosts/bad_host!/events", bearer(HORATIO_KEY))).status).toBe(400)
      expect((await get(`${EVENTS}?from=zero`, bearer(HORATIO_KEY))).status).toBe(400)
    })

    it("streams the owner's export as NDJSON that verifies offline, and a tampered copy fails", async () => {
      const res = await get(EVENTS, bearer(HORATIO_KEY))
      expect(res.status).toBe(200)
      expect(res.headers.get("content-type")).toMatch(/^application\/x-ndjson/)
      expect(res.headers.get("x-hamlet-log-head-seq")).toBe("3")
      const text = await res.text()
      const lines = text.trim().split("\n").map((l) => JSON.parse(l))
      expect(lines.map((l) => l.seq)).toEqual([1, 2, 3])
      expect(Object.keys(lines[0]).sort()).toEqual(
        [
          "data",
          "hash",
          "host",
          "meta",
          "prevHash",
          "project",
          "recordedAt",
          "seq",
          "stream",
          "type",
          "version",
        ],
      )
      expect(lines.map((l) => l.prevHash)).toEqual(["0".repeat(64), lines[0].hash, lines[1].hash])
      const file = join(dir, `${kind}.ndjson`)
      await writeFile(file, text)
      const report = await Effect.runPromise(verifyFile(file))
      expect(isFileIntact(report)).toBe(true)
      expect(report).toMatchObject({ host: "blog.example.com", events: 3, headHash: lines[2].hash })

      const tampered = join(dir, `${kind}-tampered.ndjson`)
      await writeFile(tampered, text.replace('"title":"b"', '"title":"B"'))
      const broken = await Effect.runPromise(verifyFile(tampered))
      expect(isFileIntact(broken)).toBe(false)
      expect(broken.breaks[0]).toMatchObject({ seq: 2, kind: "tampered" })
    })

    it("links a partial export's first event to the hash before it, so an edit of it fails", async () => {
      const all = (await (await get(EVENTS, bearer(HORATIO_KEY))).text()).trim().split("\n")
      const text = await (await get(`${EVENTS}?from=2`, bearer(HORATIO_KEY))).text()
      expect(JSON.parse(text.split("\n")[0]).prevHash).toBe(JSON.parse(all[0]).hash)
      const file = join(dir, `${kind}-from-2.ndjson`)
      await writeFile(file, text)
      expect(await Effect.runPromise(verifyFile(file, { fromSeq: 2 }))).toMatchObject({
        anchoredAt: 2,
        anchorHash: JSON.parse(all[0]).hash,
        breaks: [],
      })
      await writeFile(file, text.replace('"title":"b"', '"title":"B"'))
      const forged = await Effect.runPromise(verifyFile(file, { fromSeq: 2 }))
      expect(forged.breaks.map((b) => [b.seq, b.kind])).toEqual([[2, "tampered"]])
      // one stream: each event links to seq − 1, which the export does not hold
      const stream = JSON.parse(all[2]).stream
      const streamed = (await (await get(`${EVENTS}?stream=${stream}`, bearer(HORATIO_KEY))).text()).trim()
      expect(JSON.parse(streamed).prevHash).toBe(JSON.parse(all[1]).hash)
    })

    it("narrows the export with from/to query parameters", async () => {
      const res = await get(`${EVENTS}?from=2&to=3`, bearer(HORATIO_KEY))
      const seqs = (await res.text()).trim().split("\n").map((l) => JSON.parse(l).seq)
      expect(seqs).toEqual([2, 3])
      const theatre = await get("/admin/hosts/theatre.example.com/events", bearer(OTHELLO_KEY))
      expect(theatre.status).toBe(200)
      expect((await theatre.text()).trim().split("\n")).toHaveLength(1)
    })
  })

describeAdminExport("pglite")
describe.skipIf(!hasPostgres)("on postgres", () => {
  describeAdminExport("postgres")
})

describe("admin export for a project without a key", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ configPath: "./test/fixtures/audit/config-horatio-key-only.json" })
  })
  afterAll(() => server?.close())

  it("is disabled (403 to a key holder, 401 to anyone else), never open", async () => {
    const path = "/admin/hosts/theatre.example.com/events"
    expect((await server.call("admin.invalid", path, { headers: bearer(HORATIO_KEY) })).status).toBe(403)
    for (const headers of [{}, bearer(OTHELLO_KEY), bearer("")]) {
      const res = await server.call("admin.invalid", path, { headers })
      expect(res.status).toBe(401)
    }
  })
})
