/**
 * Folder hosts and run-time hosts through the admin API: the API, the listing, reloads and
 * DELETE agree on which hosts a project serves. A folder host whose folder is gone is marked
 * removed; registering it through the API makes it a run-time host that survives reloads
 * until DELETE; a folder made again for a deleted host serves it as a folder host. A signed
 * change on `<root>.ctl.hosts` is refused for a folder host as the API refuses it.
 */
import { Effect } from "effect"
import { mkdir, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { signHostChange } from "../../src/admin/host-change-signature.ts"
import { HOSTS_CONTROL_SUBJECT } from "../../src/actors/supervisor.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { MOD, type TempProject, writeTempProject } from "../support/temp-project.ts"

const KEY = "foldery-admin-key-0123456789"
const FOLDER_HOST = "h3.folder.test"

describe("folder hosts in the hosts admin API", () => {
  let server: TestServer
  let temp: TempProject

  beforeAll(async () => {
    temp = await writeTempProject({
      name: "foldery",
      hosts: [FOLDER_HOST, "kept.folder.test"],
      projectTs: `import { defineProject } from ${MOD}\nexport default defineProject({ name: "foldery" })\n`,
      api: {
        Ping: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
export default defineQuery({
  name: "Ping", input: Schema.Struct({}), output: Schema.Struct({ host: Schema.String }),
  handle: (_i, ctx) => Effect.succeed({ host: ctx.host }),
})
`,
      },
    })
    await writeFile(
      temp.configPath,
      JSON.stringify({ projects: ["./foldery"], projectKeys: { foldery: KEY } }),
    )
    server = await startTestServer({ configPath: temp.configPath })
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await temp?.remove()
  })

  const ping = async (host: string) => {
    const response = await server.call(host, "/api/Ping")
    await response.body?.cancel()
    return response.status
  }
  const admin = (path: string, method: string, body?: unknown) =>
    server.call("localhost", path, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { authorization: `Bearer ${KEY}` },
    })
  const listed = async () => (await (await admin("/admin/projects/foldery/hosts", "GET")).json()).hosts
  const reload = () => Effect.runPromise(server.supervisor.reload)
  const row = async () =>
    (await server
      .sql`select source, removed_at is null as live from hamlet_hosts where host = ${FOLDER_HOST}`)[0]

  it("a former folder host added through the API stays served across reloads until DELETE", async () => {
    expect(await listed()).toContainEqual({ host: FOLDER_HOST, source: "directory" })
    await rm(join(temp.dir, "hosts", FOLDER_HOST), { recursive: true })
    await reload()
    expect(await ping(FOLDER_HOST)).toBe(404)
    expect(await listed()).not.toContainEqual(expect.objectContaining({ host: FOLDER_HOST }))
    expect(await row()).toEqual({ source: "directory", live: false })

    const added = await admin("/admin/projects/foldery/hosts", "POST", { host: FOLDER_HOST })
    expect(added.status).toBe(201)
    expect(await ping(FOLDER_HOST)).toBe(200)
    expect(await row()).toEqual({ source: "database", live: true })
    await reload()
    expect(await ping(FOLDER_HOST)).toBe(200)
    expect(await listed()).toContainEqual({ host: FOLDER_HOST, source: "database" })

    const removed = await admin(`/admin/projects/foldery/hosts/${FOLDER_HOST}`, "DELETE")
    expect(removed.status).toBe(200)
    expect(await ping(FOLDER_HOST)).toBe(404)
    await reload()
    expect(await ping(FOLDER_HOST)).toBe(404)
    expect(await listed()).not.toContainEqual(expect.objectContaining({ host: FOLDER_HOST }))
    expect(await ping("kept.folder.test")).toBe(200)
  })

  it("a folder made again for a deleted run-time host serves it as a folder host, gone with the folder", async () => {
    await mkdir(join(temp.dir, "hosts", FOLDER_HOST), { recursive: true })
    await reload()
    expect(await ping(FOLDER_HOST)).toBe(200)
    expect(await row()).toEqual({ source: "directory", live: true })
    expect(await listed()).toContainEqual({ host: FOLDER_HOST, source: "directory" })
    await rm(join(temp.dir, "hosts", FOLDER_HOST), { recursive: true })
    await reload()
    expect(await ping(FOLDER_HOST)).toBe(404)
    expect(await row()).toEqual({ source: "directory", live: false })
  })

  it("a host served from a folder can be neither added nor removed through the API", async () => {
    const host = "kept.folder.test"
    expect((await admin("/admin/projects/foldery/hosts", "POST", { host })).status).toBe(409)
    expect((await admin(`/admin/projects/foldery/hosts/${host}`, "DELETE")).status).toBe(409)
    expect(await ping(host)).toBe(200)
    expect(await listed()).toContainEqual({ host, source: "directory" })
  })

  it("a signed host change over NATS can neither add nor remove a folder host: a conflict, as the API says", async () => {
    const host = "kept.folder.test"
    const ask = async (action: "add" | "remove") => {
      const change = signHostChange({ action, project: "foldery", host }, KEY)
      const reply = await Effect.runPromise(
        server.bus.request(HOSTS_CONTROL_SUBJECT, new TextEncoder().encode(JSON.stringify(change)), {
          timeoutMs: 10_000,
        }),
      )
      return JSON.parse(new TextDecoder().decode(reply.data))
    }
    const fromFolder = {
      ok: false,
      error: {
        code: "conflict",
        message: `host ${host} comes from a folder; add or remove the folder instead`,
      },
    }
    expect(await ask("remove")).toEqual(fromFolder)
    expect(await ask("add")).toEqual(fromFolder)
    // the API's answer, word for word
    const refused = await admin(`/admin/projects/foldery/hosts/${host}`, "DELETE")
    expect(await refused.json()).toEqual({ error: fromFolder.error })
    expect(await ping(host)).toBe(200)
    expect(await listed()).toContainEqual({ host, source: "directory" })
    // nothing recorded: once the folder goes, a change signed before then still applies
    const recorded = await server.sql`select 1 from hamlet_signed_host_changes where host = ${host}`
    expect(recorded.length).toBe(0)
  })
})
