/**
 * A NATS outage under load: while NATS is down, HTTP requests get 503 quickly (no hangs)
 * and /readyz says not ready; when it is back, the node reconnects by itself, and no
 * write that was acknowledged with 200 is missing from the log.
 */
import { Effect, Exit, Scope } from "effect"
import { existsSync } from "node:fs"
import postgres from "postgres"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { scratchPostgresUrl } from "../support/database.ts"
import { requestWithHost } from "../support/http.ts"
import { NATS_SERVER_BIN, type PrivateNatsServer, startNatsServer } from "../support/nats-server.ts"
import { type HamletNode, startNode } from "../support/node-process.ts"
import { until } from "../support/eventually.ts"
import { checkService, isServiceRequired } from "../support/services.ts"

// a private nats-server is started and killed: the binary must be there, besides Postgres
const hasBinary = existsSync(NATS_SERVER_BIN)
if (!hasBinary && isServiceRequired) throw new Error(`${NATS_SERVER_BIN} is required but missing`)
if (!hasBinary) console.warn(`skipping the NATS outage scenario: no ${NATS_SERVER_BIN}`)
const available = hasBinary && (await checkService("postgres"))

describe.skipIf(!available)("a NATS outage under load", () => {
  const scope = Effect.runSync(Scope.make())
  let nats: PrivateNatsServer
  let node: HamletNode
  let sql: postgres.Sql

  beforeAll(async () => {
    nats = await Effect.runPromise(Scope.provide(startNatsServer, scope))
    const databaseUrl = await Effect.runPromise(Scope.provide(scratchPostgresUrl, scope))
    node = await startNode({ DATABASE_URL: databaseUrl, NATS_URL: nats.url })
    sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  }, 120_000)
  afterAll(async () => {
    await sql?.end()
    await node?.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  const submit = async (title: string) => {
    const started = performance.now()
    const response = await requestWithHost(node.port, "blog.example.com", "/api/SubmitItem", {
      body: JSON.stringify({ title }),
    })
    const body = await response.json()
    return {
      status: response.status,
      id: body.id as string | undefined,
      ms: performance.now() - started,
      response,
      body,
    }
  }
  const readyStatus = async () => (await fetch(`http://127.0.0.1:${node.port}/readyz`)).status

  it(
    "fails fast with 503 while NATS is down, recovers by itself, and loses no acknowledged write",
    async () => {
      const acknowledged: Array<string> = []
      let stop = false
      const load = (async () => {
        for (let i = 0; !stop; i++) {
          const r = await submit(`load ${i}`)
          if (r.status === 200 && r.id) acknowledged.push(r.id)
          else await new Promise((res) => setTimeout(res, 20))
        }
      })()
      await until("some writes before the outage", () => acknowledged.length >= 20)
      expect(await readyStatus()).toBe(200)

      await Effect.runPromise(nats.kill)
      await until("readyz to report not ready", async () => (await readyStatus()) === 503)
      const during = await submit("during outage")
      expect(during.status).toBe(503)
      expect(during.response.headers.get("retry-after")).toMatch(/^\d+$/)
      expect(during.body.error.code).toBe("overloaded")
      expect(during.ms).toBeLessThan(1_000)

      await Effect.runPromise(nats.restart)
      await until("readyz to recover", async () => (await readyStatus()) === 200)
      await until("writes to succeed again", async () => (await submit("after")).status === 200)
      const countBefore = acknowledged.length
      await until("load to continue", () => acknowledged.length >= countBefore + 10)
      stop = true
      await load

      const rows = await sql`select data->>'id' as id from hamlet_events where host = 'blog.example.com'`
      const stored = new Set(rows.map((r) => r.id))
      const missing = acknowledged.filter((id) => !stored.has(id))
      expect(missing).toEqual([])
    },
    60_000,
  )
})
