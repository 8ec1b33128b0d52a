/**
 * A node that missed a host announcement (cut off from NATS when it was sent) catches up with
 * hamlet_hosts once its link is back: a host added meanwhile is served, a host removed meanwhile
 * is no longer served nor written to — instead of the fleet disagreeing until the next change.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { signHostChange } from "../../src/admin/host-change-signature.ts"
import { controlSubject } from "../../src/bus/subjects.ts"
import { scratchPostgresUrl } from "../support/database.ts"
import { until } from "../support/eventually.ts"
import { requestWithHost } from "../support/http.ts"
import { type HamletNode, startNode } from "../support/node-process.ts"
import { checkService, NATS_URL, uniqueSuffix } from "../support/services.ts"
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts"

const available = (await checkService("postgres")) && (await checkService("nats"))
/** Host commands on the control subject are signed with it. */
const HORATIO_KEY = "horatio-catch-up-key-for-tests"

// skipped only when Postgres or NATS is unreachable on a dev machine; .ci/run makes them required
describe.skipIf(!available)("a node that missed host announcements while cut off from NATS", () => {
  const scope = Effect.runSync(Scope.make())
  let a: HamletNode, b: HamletNode, proxy: TcpProxy, nc: NatsConnection
  beforeAll(async () => {
    const databaseUrl = await Effect.runPromise(Scope.provide(scratchPostgresUrl, scope))
    const nats = new URL(NATS_URL)
    proxy = await startTcpProxy(nats.hostname, Number(nats.port || 4222))
    const key = { HAMLET_PROJECT_KEY_HORATIO: HORATIO_KEY }
    a = await startNode({ DATABASE_URL: databaseUrl, NATS_URL, HAMLET_ISOLATES: "1", ...key })
    b = await startNode({
      ...key,
      DATABASE_URL: databaseUrl,
      NATS_URL: `nats://127.0.0.1:${proxy.port}`,
      HAMLET_ISOLATES: "1",
      LOG_LEVEL: "Info",
    })
    nc = await connect({ servers: NATS_URL })
  }, 120_000)
  afterAll(async () => {
    await nc?.close()
    await Promise.all([a?.close(), b?.close()])
    await proxy?.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  const feed = async (node: HamletNode, host: string) =>
    (await requestWithHost(node.port, host, "/api/GetFeed")).status
  const isReady = async (node: HamletNode) =>
    (await fetch(`http://127.0.0.1:${node.port}/readyz`)).status === 200
  const announce = (action: "add" | "remove", host: string) =>
    nc.publish(
      controlSubject("hosts"),
      JSON.stringify(signHostChange({ action, project: "horatio", host }, HORATIO_KEY)),
    )
  /** Cuts B off NATS while `during` runs, then lets it back. */
  const whileCutOff = async (during: () => Promise<void>) => {
    await proxy.refuse()
    await until("B to notice it is cut off", async () => !(await isReady(b)))
    await during()
    await proxy.accept()
    await until("B to be back on NATS", () => isReady(b))
  }

  it("serves a host added meanwhile, and stops serving one removed meanwhile", async () => {
    const added = `added-${uniqueSuffix()}.catchup.test`
    await whileCutOff(async () => {
      announce("add", added)
      await until("A to serve the new host", async () => (await feed(a, added)) === 200)
    })
    await until("B to serve the host added while it was cut off", async () => (await feed(b, added)) === 200)
    // the operator is told: the loss, then the way back
    const lost = b.logs().indexOf("NATS connection lost; reconnecting")
    expect(lost).toBeGreaterThanOrEqual(0)
    expect(b.logs().indexOf("NATS connection restored", lost)).toBeGreaterThan(lost)

    const removed = `removed-${uniqueSuffix()}.catchup.test`
    announce("add", removed)
    await until(
      "both to serve it",
      async () => (await feed(a, removed)) === 200 && (await feed(b, removed)) === 200,
    )
    await whileCutOff(async () => {
      announce("remove", removed)
      await until("A to stop serving it", async () => (await feed(a, removed)) === 404)
    })
    await until(
      "B to stop serving the host removed while it was cut off",
      async () => (await feed(b, removed)) === 404,
    )
    const write = await requestWithHost(b.port, removed, "/api/SubmitItem", {
      body: JSON.stringify({ title: "after removal" }),
    })
    expect(write.status).toBe(404)
  }, 120_000)
})
