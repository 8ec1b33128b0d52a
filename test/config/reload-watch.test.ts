/**
 * The supervisor's watch of config.json and the host folders, end to end: a change is served
 * also when it lands while a reload that changes what is watched is running, and a config.json
 * swapped in by re-pointing a symlink (a Kubernetes ConfigMap volume) is reloaded.
 */
import { existsSync } from "node:fs"
import { mkdir, rename, symlink, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, describe, it } from "vitest"
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
/** Reloads under a loaded CPU can take a while: a generous deadline, polled. */
const WAIT_MS = 30_000

const projectTs = (name: string, before = "") =>
  `import { defineProject } from ${MOD}\n${before}export default defineProject({ name: ${
    JSON.stringify(name)
  } })\n`

/** A second project beside `temp`'s, not yet in its config.json. */
const writeProject = async (temp: TempProject, name: string, host: string, source: string) => {
  const dir = join(temp.root, name)
  await mkdir(join(dir, "api"), { recursive: true })
  await mkdir(join(dir, "hosts", host), { recursive: true })
  await writeFile(join(dir, "project.ts"), source)
  await writeFile(join(dir, "api", "Ping.ts"), ping)
}

describe("the supervisor's watch of config and host folders", () => {
  let server: TestServer | undefined
  let temp: TempProject | undefined
  afterEach(async () => {
    await server?.close()
    await temp?.remove()
    server = temp = undefined
  })
  const status = async (host: string) => (await server!.call(host, "/api/Ping")).status

  it("serves a host folder made while a reload that changes the watched folders runs", async () => {
    temp = await writeTempProject({
      name: "alpha",
      hosts: ["a.rewatch.test"],
      projectTs: projectTs("alpha"),
      api: { Ping: ping },
    })
    // a project whose loading waits for the test: the reload that adds it is held open
    const loading = join(temp.root, "slow-loading")
    const release = join(temp.root, "slow-release")
    await writeProject(
      temp,
      "slow",
      "s.rewatch.test",
      projectTs(
        "slow",
        `await Deno.writeTextFile(${JSON.stringify(loading)}, "")
while (!(await Deno.stat(${JSON.stringify(release)}).then(() => true, () => false))) {
  await new Promise((r) => setTimeout(r, 20))
}
`,
      ),
    )
    server = await startTestServer({ configPath: temp.configPath })
    await writeFile(temp.configPath, JSON.stringify({ projects: ["./alpha", "./slow"] }))
    await until("the reload adding the slow project to be loading it", () => existsSync(loading), WAIT_MS)
    // made during that reload, in a folder watched before it
    await mkdir(join(temp.dir, "hosts", "late.rewatch.test"))
    await writeFile(release, "")
    await until("the slow project's host", async () => (await status("s.rewatch.test")) === 200, WAIT_MS)
    await until(
      "the host folder made during the reload",
      async () => (await status("late.rewatch.test")) === 200,
      WAIT_MS,
    )
  }, 90_000)

  it("reloads a config.json swapped in by re-pointing a symlink, as a ConfigMap volume does", async () => {
    temp = await writeTempProject({
      name: "alpha",
      hosts: ["a.configmap.test"],
      projectTs: projectTs("alpha"),
      api: { Ping: ping },
    })
    await writeProject(temp, "beta", "b.configmap.test", projectTs("beta"))
    // a ConfigMap's layout: config.json -> ..data/config.json, ..data -> ..<version>
    const volume = join(temp.root, "volume")
    await mkdir(join(volume, "..v1"), { recursive: true })
    await writeFile(join(volume, "..v1", "config.json"), JSON.stringify({ projects: ["../alpha"] }))
    await symlink("..v1", join(volume, "..data"))
    await symlink("..data/config.json", join(volume, "config.json"))
    server = await startTestServer({ configPath: join(volume, "config.json") })
    await until("the first project's host", async () => (await status("a.configmap.test")) === 200, WAIT_MS)
    // the update: a new version folder, then ..data re-pointed at it by a rename over it
    await mkdir(join(volume, "..v2"))
    await writeFile(
      join(volume, "..v2", "config.json"),
      JSON.stringify({ projects: ["../alpha", "../beta"] }),
    )
    await symlink("..v2", join(volume, "..data_tmp"))
    await rename(join(volume, "..data_tmp"), join(volume, "..data"))
    await until(
      "the project the new version lists",
      async () => (await status("b.configmap.test")) === 200,
      WAIT_MS,
    )
  }, 90_000)
})
