/**
 * `/metrics` behind HAMLET_METRICS_TOKEN: with it set, only a scraper presenting the token as a
 * bearer token reads the metrics (they name every project and its traffic, on every tenant's
 * hostname); without it, `/metrics` stays open (http-contract.test.ts).
 */
import { ConfigProvider, Effect, Exit, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { MetricsToken } from "../../src/ingress/metrics.ts"
import { startTestServer, type TestServer } from "../support/server.ts"

const TOKEN = "scrape-me-4c1d"
const BLOG = "blog.example.com"

describe("/metrics with HAMLET_METRICS_TOKEN", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ env: { HAMLET_METRICS_TOKEN: TOKEN } })
  }, 60_000)
  afterAll(() => server?.close())

  const metrics = (authorization?: string) =>
    server.call(BLOG, "/metrics", authorization ? { headers: { authorization } } : undefined)

  it("answers 401 without the token or with another, and never shows a counter", async () => {
    for (
      const authorization of [undefined, "Bearer nope", `Basic ${btoa(`x:${TOKEN}`)}`, `Bearer ${TOKEN}x`]
    ) {
      const response = await metrics(authorization)
      expect(response.status, authorization).toBe(401)
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer /)
      const body = await response.text()
      expect(body).not.toMatch(/hamlet_/)
      expect(JSON.parse(body).error.code).toBe("unauthorized")
    }
  })

  it("answers the metrics to the token", async () => {
    expect((await server.call(BLOG, "/")).status).toBe(200)
    const response = await metrics(`Bearer ${TOKEN}`)
    expect(response.status).toBe(200)
    expect(await response.text()).toMatch(
      /^hamlet_http_requests_total\{project="horatio",status="200"\} \d+$/m,
    )
  })

  it("leaves the tenants' own paths and the probes as they were", async () => {
    expect((await server.call(BLOG, "/healthz")).status).toBe(200)
    expect((await server.call(BLOG, "/")).status).toBe(200)
  })
})

describe("HAMLET_METRICS_TOKEN as read", () => {
  const read = (value: string | undefined) =>
    Effect.runSyncExit(MetricsToken.parse(ConfigProvider.fromEnvRecord({ HAMLET_METRICS_TOKEN: value })))

  it("is trimmed (an env file's line end), empty or unset leaves /metrics open", () => {
    const trimmed = read(" tok-1\n")
    expect(Exit.isSuccess(trimmed) && trimmed.value && Redacted.value(trimmed.value)).toBe("tok-1")
    expect(read("")).toEqual(Exit.succeed(undefined))
    expect(read(undefined)).toEqual(Exit.succeed(undefined))
  })

  it("refuses a token no client could send, naming the variable", () => {
    const exit = read("two words")
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(Exit.isFailure(exit) && exit.cause)).toMatch(/HAMLET_METRICS_TOKEN must be printable ASCII/)
  })

  it("refuses a token of only whitespace: it was meant to close /metrics, and would leave it open", () => {
    const exit = read("  \t ")
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(Exit.isFailure(exit) && exit.cause)).toMatch(/HAMLET_METRICS_TOKEN is only whitespace/)
  })
})
