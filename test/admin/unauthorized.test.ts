/**
 * The admin API tells nothing to a caller without a valid key: a missing key, a wrong key, an
 * unknown host or project and a project without a key all get one and the same 401 (status,
 * body, WWW-Authenticate). A caller holding some project's key learns more (403, 404).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { authorizeHost, type HostAccessDeps } from "../../src/admin/authorize.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

const HORATIO_KEY = "horatio-admin-key-for-tests"

describe("admin API refusals", () => {
  let server: TestServer
  beforeAll(async () => {
    // othello has no key: its admin operations are disabled
    server = await startTestServer({ configPath: "test/fixtures/admin/config-othello-without-key.json" })
  }, 60_000)
  afterAll(() => server?.close())

  const refusal = async (path: string, method: string, authorization: string | undefined) => {
    const res = await server.call("localhost", path, {
      method,
      headers: authorization === undefined ? {} : { authorization },
    })
    return {
      status: res.status,
      body: await res.text(),
      wwwAuthenticate: res.headers.get("www-authenticate"),
    }
  }

  it("a caller without a valid key gets the same 401 whether the host or project exists or has a key", async () => {
    const paths: ReadonlyArray<[string, string]> = [
      ["/admin/hosts/blog.example.com/events", "GET"],
      ["/admin/hosts/nope.example.com/events", "GET"],
      ["/admin/hosts/blog.example.com/keys", "GET"],
      ["/admin/hosts/theatre.example.com/keys", "POST"],
      ["/admin/hosts/nope.example.com/keys", "GET"],
      ["/admin/hosts/blog.example.com/dead-letters", "GET"],
      ["/admin/hosts/theatre.example.com/dead-letters", "GET"],
      ["/admin/hosts/nope.example.com/dead-letters", "GET"],
      ["/admin/projects/horatio/hosts", "GET"],
      ["/admin/projects/othello/hosts", "GET"],
      ["/admin/projects/nosuch/hosts", "GET"],
      ["/admin/no-such-route", "GET"],
    ]
    const callers = [
      undefined,
      "Bearer not-the-key-at-all",
      "Bearer othello-admin-key-for-tests",
      "Basic eDp5",
    ]
    const seen = new Set<string>()
    for (const [path, method] of paths) {
      for (const authorization of callers) {
        const answer = await refusal(path, method, authorization)
        expect([path, authorization, answer.status]).toEqual([path, authorization, 401])
        seen.add(JSON.stringify(answer))
      }
    }
    expect([...seen].map((answer) => JSON.parse(answer))).toEqual([{
      status: 401,
      body: JSON.stringify({
        error: { code: "unauthorized", message: "a valid key is required (Authorization: Bearer <key>)" },
      }),
      wwwAuthenticate: 'Bearer realm="hamlet-admin"',
    }])
  })

  it("a holder of some project's key learns that a project has no key, or that a host does not exist", async () => {
    const key = `Bearer ${HORATIO_KEY}`
    const disabled = await refusal("/admin/projects/othello/hosts", "GET", key)
    expect(disabled.status).toBe(403)
    expect(JSON.parse(disabled.body).error.message).toBe(
      "admin operations of project othello are disabled: it has no project key",
    )
    expect((await refusal("/admin/hosts/theatre.example.com/keys", "POST", key)).status).toBe(403)
    expect((await refusal("/admin/hosts/nope.example.com/events", "GET", key)).status).toBe(404)
    expect((await refusal("/admin/projects/nosuch/hosts", "GET", key)).status).toBe(404)
    expect((await refusal("/admin/projects/horatio/hosts", "GET", key)).status).toBe(200)
  })
})

describe("authorizeHost() without a key that could open it", () => {
  it("refuses before looking the host up: the time taken does not say whether it exists", async () => {
    const lookedUp: Array<string> = []
    const deps: HostAccessDeps = {
      sql: undefined as never, // never reached: nothing is looked up
      ownerOf: (host) => {
        lookedUp.push(host)
        return Promise.resolve(undefined)
      },
      projects: () => [],
    }
    for (const authorization of [undefined, "Bearer wrong-key", "Basic eDp5"]) {
      const request = new Request("http://localhost/admin/hosts/nope.example.com/events", {
        headers: authorization === undefined ? {} : { authorization },
      })
      const answer = await authorizeHost(deps, request, "nope.example.com")
      expect(answer instanceof Response && answer.status).toBe(401)
    }
    expect(lookedUp).toEqual([])
    // a key shaped as a host's is looked up (the host decides whether it opens anything)
    const hostKey = `hk_${"0".repeat(16)}_${"a".repeat(43)}`
    const request = new Request("http://localhost/", { headers: { authorization: `Bearer ${hostKey}` } })
    expect(((await authorizeHost(deps, request, "nope.example.com")) as Response).status).toBe(401)
    expect(lookedUp).toEqual(["nope.example.com"])
  })
})
