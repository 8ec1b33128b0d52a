/**
 * The bench harness measures something real: its load generator (the Deno client, run as
 * a separate process) drives a local Deno.serve for about a second and reports sane
 * figures, and its histogram reads percentiles correctly. No timing is asserted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Histogram } from "../../bench/histogram.ts"
import { runLoadProcess } from "../../bench/load.ts"
import type { BenchContext } from "../../bench/context.ts"
import { measure } from "../../bench/measure.ts"
import { backendDatabase, isLocalService, localServiceCpuSeconds } from "../../bench/processes.ts"

describe("bench harness", () => {
  let server: Deno.HttpServer<Deno.NetAddr>
  const seenHosts = new Set<string>()
  let posts = 0

  beforeAll(() => {
    server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
      seenHosts.add(req.headers.get("host") ?? "")
      if (req.method === "POST") {
        posts++
        await req.text()
      }
      return new Response(JSON.stringify({ ok: true }), { headers: { "content-type": "application/json" } })
    })
  })
  afterAll(() => server?.shutdown())

  it("runLoadProcess() reports requests, rps and ordered percentiles against a local server", async () => {
    const result = await runLoadProcess({
      kind: "http",
      port: server.addr.port,
      hosts: ["a.bench.test", "b.bench.test"],
      targets: [
        { method: "GET", path: "/", weight: 9 },
        { method: "POST", path: "/", body: "{}", weight: 1 },
      ],
      connections: 4,
      durationS: 1,
      warmupS: 0.2,
    }, "deno")
    expect(result.client).toBe("deno")
    expect(result.requests).toBeGreaterThan(0)
    expect(result.errors).toBe(0)
    expect(result.rps).toBeGreaterThan(0)
    expect(result.latency.p50Ms).toBeGreaterThan(0)
    expect(result.latency.p50Ms).toBeLessThanOrEqual(result.latency.p99Ms)
    expect(result.latency.p99Ms).toBeLessThanOrEqual(result.latency.p999Ms)
    expect(result.latency.p999Ms).toBeLessThanOrEqual(result.latency.maxMs)
    expect(result.clientCpuPercent).toBeGreaterThanOrEqual(0)
    // the Host header is set per request and both hosts and both methods are exercised
    expect(seenHosts).toEqual(new Set(["a.bench.test", "b.bench.test"]))
    expect(posts).toBeGreaterThan(0)
  })

  it("measure() splits the server's CPU per request, read from /proc while the load runs", async () => {
    // the server is this process: its CPU while the separate load process drives it
    const ctx = { client: "deno" } as unknown as BenchContext
    const measured = await measure(ctx, {
      kind: "http",
      port: server.addr.port,
      hosts: ["a.bench.test"],
      targets: [{ method: "GET", path: "/", weight: 1 }],
      connections: 4,
      durationS: 1,
      warmupS: 0.2,
    }, [Deno.pid])
    expect(measured.result.rps).toBeGreaterThan(0)
    expect(measured.serverCpuPercent).toBeGreaterThan(0)
    const cpu = measured.cpuUsPerRequest!
    expect(cpu.server).toBeGreaterThan(0)
    // serving a request costs this process CPU, but not a whole second of it
    expect(cpu.server).toBeLessThan(1_000_000)
    // the JavaScript threads (main, and a worker when the tests run in one) are part of the
    // process: the one that served used CPU, and together they used no more than the process
    const threads = measured.threadCpuPercent!
    const jsThreads = threads.main + (threads.worker ?? 0)
    expect(jsThreads).toBeGreaterThan(0)
    expect(jsThreads).toBeLessThanOrEqual(measured.serverCpuPercent! + 2)
    // a run on neither a Postgres nor a NATS of this machine is charged for neither, even
    // where they run (the test services, other test files using them)
    expect([cpu.postgres, cpu.nats]).toEqual([undefined, undefined])
    expect(localServiceCpuSeconds({ postgres: false, nats: false })).toEqual({ postgres: 0, nats: 0 })
  })

  it("isLocalService() tells a service on this machine from one elsewhere", () => {
    expect(isLocalService("postgres://postgres@127.0.0.1:5432/test")).toBe(true)
    expect(isLocalService("nats://localhost:4222")).toBe(true)
    expect(isLocalService("127.0.0.1:4222")).toBe(true)
    expect(isLocalService("postgres://db.internal:5432/x")).toBe(false)
    expect(isLocalService(undefined)).toBe(false)
  })

  it("backendDatabase() reads a client backend's database from its title, with or without a cluster name", () => {
    expect(backendDatabase("postgres: 15/main: postgres hamlet_bench_x_1 127.0.0.1(58970) idle")).toBe(
      "hamlet_bench_x_1",
    )
    expect(backendDatabase("postgres: postgres otherdb 127.0.0.1(58970) idle")).toBe("otherdb")
    expect(backendDatabase("postgres: app otherdb [local] idle in transaction")).toBe("otherdb")
    expect(backendDatabase("postgres: 15/main: checkpointer")).toBeUndefined()
    expect(backendDatabase("postgres: walwriter")).toBeUndefined()
    expect(backendDatabase("/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main"))
      .toBeUndefined()
  })

  it("Histogram.quantile() reads percentiles within its 1% bucket precision", () => {
    const h = new Histogram()
    for (let i = 1; i <= 1000; i++) h.record(i / 10) // 0.1 ms … 100 ms
    const s = h.summary()
    expect(s.count).toBe(1000)
    expect(s.p50Ms).toBeGreaterThan(49.5)
    expect(s.p50Ms).toBeLessThan(51)
    expect(s.p99Ms).toBeGreaterThan(98.5)
    expect(s.p99Ms).toBeLessThanOrEqual(100)
    expect(s.maxMs).toBe(100)
    const empty = new Histogram().summary()
    expect(empty.p99Ms).toBe(0)
  })
})
