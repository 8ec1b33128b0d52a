/**
 * A host folder in one project for a host another project registered at run time: the host
 * stays with the project whose log it is, and the clash holds up neither the reload's other
 * changes nor a restart of the node.
 */
import { Effect, Exit, Scope } from "effect"
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PostgresLive } from "../../src/store/postgres.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { checkService } from "../support/services.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { MOD, type TempProject, writeTempProject } from "../support/temp-project.ts"

const KEY = "owning-admin-key-0123456789"
const CLASHING = "dup.conflict.test"
const hasPostgres = await checkService("postgres")

/** project.ts and a Ping query answering with the project's name, for project `name`. */
const _files = (name: string) => ({
  projectTs: `import { defineProject } from ${MOD}\nexport default defineProject({ name: "${name}" })\n`,
  ping: `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
export default defineQuery({
  name: "Ping", input: Schema.Struct({}), output: Schema.Struct({ project: Schema.String }),
  handle: () => Effect.succeed({ project: "${name}" }),
})
`,
})

// a restart needs a store that outlives the server: real Postgres, as in the reviewer's repro
describe.skipIf(!hasPostgres)("a host folder claiming another project's run-time host", () => {
  const scope = Effect.runSync(Scope.make())
  let url: string
  let temp: TempProject
  let server: TestServer | undefined

  beforeAll(async () => {
    const owning = _files("owning")
    temp = await writeTempProject({
      name: "owning",
      hosts: ["home.owning.test"],
      projectTs: owning.projectTs,
      api: { Ping: owning.ping },
    })
    const claiming = _files("claiming")
    const claimingDir = join(temp.root, "claiming")
    await mkdir(join(claimingDir, "api"), { recursive: true })
    await mkdir(join(claimingDir, "hosts", "home.claiming.test"), { recursive: true })
    await writeFile(join(claimingDir, "project.ts"), claiming.projectTs)
    await writeFile(join(claimingDir, "api", "Ping.ts"), claiming.ping)
    await writeFile(
      temp.configPath,
      JSON.stringify({ projects: ["./owning", "./claiming"], projectKeys: { owning: KEY } }),
    )
    url = await Effect.runPromise(Scope.provide(scope)(scratchPostgresUrl))
    server = await startTestServer({ database: PostgresLive(url), configPath: temp.configPath })
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await temp?.remove()
  })

  /** The project that answers for `host`, or the status when none does. */
  const servedBy = async (host: string) => {
    const response = await server!.call(host, "/api/Ping")
    return response.status === 200 ? (await response.json()).project : response.status
  }
  const owner = async () =>
    (await server!.sql`select project, source, removed_at is null as live from hamlet_hosts
                       where host = ${CLASHING}`)[0]

  it("the clashing folder is set aside and a host folder added after it is served", async () => {
    const added = await server!.call("localhost", "/admin/projects/owning/hosts", {
      method: "POST",
      body: JSON.stringify({ host: CLASHING }),
      headers: { authorization: `Bearer ${KEY}` },
    })
    expect(added.status).toBe(201)
    await mkdir(join(temp.root, "claiming", "hosts", CLASHING), { recursive: true })
    await Effect.runPromise(server!.supervisor.reload)
    await mkdir(join(temp.root, "claiming", "hosts", "later.claiming.test"), { recursive: true })
    await Effect.runPromise(server!.supervisor.reload)
    expect(await servedBy("later.claiming.test")).toBe("claiming")
    expect(await servedBy(CLASHING)).toBe("owning")
    expect(await servedBy("home.claiming.test")).toBe("claiming")
    expect(await owner()).toEqual({ project: "owning", source: "database", live: true })
  })

  it(
    "a node starts with the clash present, and the host stays with the project whose log it is",
    async () => {
      await server!.close()
      server = undefined
      server = await startTestServer({ database: PostgresLive(url), configPath: temp.configPath })
      expect(await servedBy(CLASHING)).toBe("owning")
      expect(await servedBy("later.claiming.test")).toBe("claiming")
      expect(await servedBy("home.owning.test")).toBe("owning")
      expect(await owner()).toEqual({ project: "owning", source: "database", live: true })
    },
    60_000,
  )
})
