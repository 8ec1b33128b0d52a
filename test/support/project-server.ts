/**
 * A test server over a temporary project for the enclosing `describe`: the project is
 * written and the server started before its tests, and both are removed after them (a test
 * may close the server itself). With `skip`, neither happens (its service is unavailable).
 */
import { afterAll, beforeAll } from "vitest"
import { startTestServer, type TestServer, type TestServerOptions } from "./server.ts"
import { type TempProject, type TempProjectSpec, writeTempProject } from "./temp-project.ts"

export interface RunningProject {
  /** Set once the suite's `beforeAll` has run. */
  readonly server: TestServer
}

export const serveTempProject = (
  spec: TempProjectSpec,
  options: Omit<TestServerOptions, "configPath"> & { readonly skip?: boolean } = {},
): RunningProject => {
  const running = {} as { server: TestServer }
  let temp: TempProject | undefined
  beforeAll(async () => {
    if (options.skip) return
    temp = await writeTempProject(spec)
    running.server = await startTestServer({ ...options, configPath: temp.configPath })
  }, 60_000)
  afterAll(async () => {
    await running.server?.close()
    await temp?.remove()
  })
  return running
}
