/**
 * A request to a routed host whose actor is not subscribed yet (a host added or moved a moment
 * ago, an actor isolate still reloading) waits for it rather than failing: NATS' "no responders"
 * means the request was not delivered, so the ingress sends it again while it routes the host,
 * for a bounded time, then answers 503 (404 when the host was removed meanwhile). Run on an ingress-only server, the test's own subscriber
 * playing the actor; on the in-process bus and on NATS.
 */
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { encodeSuccess, OK_REPLY_HEADER } from "../../src/bus/envelope.ts"
import { hostRequestWildcard } from "../../src/bus/subjects.ts"
import { retireDatabaseHost } from "../../src/actors/supervisor.ts"
import { registerHost } from "../../src/store/event-log.ts"
import { startTestServer, type TestServer } from "../support/server.ts"
import { checkService } from "../support/services.ts"

const HOST = "blog.example.com"

const contract = (bus: "memory" | "nats") => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ bus, ingressOnly: true })
  }, 60_000)
  afterAll(() => server?.close())

  /** Plays the host's actor from `delayMs` on: answers every request with `{"served": <handler>}`. */
  const actorAfter = async (delayMs: number) => {
    const scope = Effect.runSync(Scope.make())
    await new Promise((resolve) => setTimeout(resolve, delayMs))
    await Effect.runPromise(
      server.bus.subscribe(hostRequestWildcard("horatio", HOST), (message) => {
        const handler = message.subject.slice(message.subject.lastIndexOf(".") + 1)
        message.respond(encodeSuccess({ served: handler }), { [OK_REPLY_HEADER]: "ok" })
      }).pipe(Scope.provide(scope)),
    )
    return () => Effect.runPromise(Scope.close(scope, Exit.void))
  }

  it("a query and a command sent before the host's actor subscribes are answered once it does", async () => {
    const read = server.call(HOST, "/api/GetFeed")
    const write = server.call(HOST, "/api/SubmitItem", { body: JSON.stringify({ title: "early" }) })
    const stop = await actorAfter(300)
    try {
      const [r, w] = await Promise.all([read, write])
      expect([r.status, w.status]).toEqual([200, 200])
      expect([await r.json(), await w.json()]).toEqual([{ served: "GetFeed" }, { served: "SubmitItem" }])
    } finally {
      await stop()
    }
  })

  it("a host whose actor never subscribes is answered 503 within a bound", async () => {
    const started = performance.now()
    const response = await server.call(HOST, "/api/GetFeed")
    expect(response.status).toBe(503)
    expect((await response.json()).error.message).toBe("no actor serves this host now")
    expect(performance.now() - started).toBeLessThan(5_000)
  })

  it("a request waiting for a host removed meanwhile is answered 404", async () => {
    const host = `gone-${bus}.example.com`
    await Effect.runPromise(registerHost(server.sql, "horatio", host, "database"))
    expect(await Effect.runPromise(server.supervisor.syncHost(host))).toBe(true)
    const started = performance.now()
    const read = server.call(host, "/api/GetFeed")
    await new Promise((resolve) => setTimeout(resolve, 200))
    await Effect.runPromise(retireDatabaseHost(server.sql, "horatio", host))
    expect(await Effect.runPromise(server.supervisor.syncHost(host))).toBe(false)
    const response = await read
    expect(response.status).toBe(404)
    expect((await response.json()).error.message).toBe(`unknown host ${host}`)
    expect(performance.now() - started).toBeLessThan(900)
  })
}

describe("no responders yet, in-process bus", () => contract("memory"))

const hasNats = await checkService("nats")
describe.skipIf(!hasNats)("no responders yet, NATS", () => contract("nats"))
