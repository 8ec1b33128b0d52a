/**
 * Host folders are watched for every project config.json lists — also one added to it while the
 * node runs: a hosts/<name>/ folder made there is served without any other change.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, it } from "vitest"
import { until } from "../support/eventually.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { MOD, type TempProject, writeTempProject } from "../support/temp-project.ts"

const ping = `import { Effect, Schema } from "effect"
import { defineQuery } from ${MOD}
export default defineQuery({
  name: "Ping", input: Schema.Struct({}), output: Schema.Struct({ host: Schema.String }),
  handle: (_i, ctx) => Effect.succeed({ host: ctx.host }),
})
`

describe("watching the host folders of a project added at run time", () => {
  let server: TestServer
  let temp: TempProject
  beforeAll(async () => {
    temp = await writeTempProject({
      name: "alpha",
      hosts: ["a.watch.test"],
      projectTs: `import { defineProject } from ${MOD}\nexport default defineProject({ name: "alpha" })\n`,
      api: { Ping: ping },
    })
    // a second project on disk, not yet in config.json
    const beta = join(temp.root, "beta")
    await mkdir(join(beta, "api"), { recursive: true })
    await mkdir(join(beta, "hosts", "b1.watch.test"), { recursive: true })
    await writeFile(
      join(beta, "project.ts"),
      `import { defineProject } from ${MOD}\nexport default defineProject({ name: "beta" })\n`,
    )
    await writeFile(join(beta, "api", "Ping.ts"), ping)
    server = await startTestServer({ configPath: temp.configPath })
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await temp?.remove()
  })
  const status = async (host: string) => (await server.call(host, "/api/Ping")).status

  it("serves a host folder made in a project that config.json listed after the start", async () => {
    // written at once after the start: a change made while the node starts is not missed either
    await writeFile(temp.configPath, JSON.stringify({ projects: ["./alpha", "./beta"] }))
    await until("the added project's host", async () => (await status("b1.watch.test")) === 200)
    await mkdir(join(temp.root, "beta", "hosts", "b2.watch.test"))
    await until(
      "the host folder made in the added project",
      async () => (await status("b2.watch.test")) === 200,
    )
  }, 30_000)
})
