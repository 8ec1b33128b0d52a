/**
 * One measured load run: the load generator in its own process while the servers' CPU is
 * sampled from /proc, plus the ratio arithmetic every scenario reports against baselines.
 */
import http from "node:http"
import type { BenchContext, CpuPerRequest, Row, ThreadCpu } from "./context.ts"
import type { LoadResult } from "./driver.ts"
import { encodeRequest, HttpConnection } from "./http-client.ts"
import { type LoadSpec, runLoadProcess } from "./load.ts"
import {
  cpuSeconds,
  isLocalService,
  jsThreadCpuSeconds,
  localServiceCpuSeconds,
  type ServiceUse,
} from "./processes.ts"

export interface Measured {
  readonly result: LoadResult
  /** Busiest window of the run's length, percent of one core, summed over `pids`. */
  readonly serverCpuPercent?: number
  /**
   * CPU per request in that window, µs: the server (`pids`), and this machine's Postgres and
   * NATS processes when they run here (the embedded store and bus are inside the server).
   */
  readonly cpuUsPerRequest?: CpuPerRequest
  /** The servers' JavaScript threads in that window, percent of one core, summed over `pids`. */
  readonly threadCpuPercent?: ThreadCpu
}

interface Sample {
  readonly at: number
  readonly server: number
  readonly postgres: number
  readonly nats: number
  readonly main: number
  readonly worker: number | undefined
}

/**
 * Runs `spec` (HTTP through ctx.client) while sampling the CPU of `pids` (and of the local
 * services the scenario uses: both unless `services` says otherwise) every 200 ms.
 */
export const measure = async (
  ctx: BenchContext,
  spec: LoadSpec,
  pids: ReadonlyArray<number> = [],
  services: { readonly postgres?: boolean; readonly nats?: boolean } = {},
): Promise<Measured> => {
  const samples: Array<Sample> = []
  const uses: ServiceUse = {
    postgres: (services.postgres ?? true) && isLocalService(ctx.databaseUrl),
    nats: (services.nats ?? true) && isLocalService(ctx.natsUrl),
    databasePrefix: ctx.databases?.prefix,
  }
  const sample = () => {
    const services = localServiceCpuSeconds(uses)
    const threads = pids.map(jsThreadCpuSeconds)
    const workers = threads.filter((t) => t.worker !== undefined)
    samples.push({
      main: threads.reduce((s, t) => s + t.main, 0),
      worker: workers.length > 0 ? workers.reduce((s, t) => s + t.worker!, 0) : undefined,
      at: performance.now(),
      server: pids.reduce((s, pid) => s + cpuSeconds(pid), 0),
      postgres: services.postgres,
      nats: services.nats,
    })
  }
  sample()
  const timer = setInterval(sample, 200)
  try {
    const result = await runLoadProcess(spec, spec.kind === "http" ? ctx.client : "deno")
    sample()
    const window = busiestWindow(samples, spec.durationS, pids.length > 0 ? "server" : "postgres")
    if (!window) return { result }
    const perRequest = (key: keyof CpuPerRequest) => {
      const used = window.to[key] - window.from[key]
      const seconds = (window.to.at - window.from.at) / 1000
      return used > 0 && result.rps > 0 ? Math.round((used / seconds / result.rps) * 1e6) : undefined
    }
    const server = pids.length > 0 ? perRequest("server") : undefined
    return {
      result,
      serverCpuPercent: pids.length > 0 ? Math.round(rate(window, "server") * 100) : undefined,
      cpuUsPerRequest: { server, postgres: perRequest("postgres"), nats: perRequest("nats") },
      threadCpuPercent: pids.length > 0 ? threadPercent(window) : undefined,
    }
  } finally {
    clearInterval(timer)
  }
}

const rate = (window: { from: Sample; to: Sample }, key: keyof CpuPerRequest | "main") =>
  (window.to[key] - window.from[key]) / ((window.to.at - window.from.at) / 1000)

const threadPercent = (window: { from: Sample; to: Sample }): ThreadCpu => {
  const { from, to } = window
  const seconds = (to.at - from.at) / 1000
  const worker = from.worker !== undefined && to.worker !== undefined
    ? Math.round(((to.worker - from.worker) / seconds) * 100)
    : undefined
  return { main: Math.round(rate(window, "main") * 100), worker }
}

/** The span of `seconds` (or the whole run, if shorter) in which `key` used the most CPU. */
const busiestWindow = (
  samples: ReadonlyArray<Sample>,
  seconds: number,
  key: keyof CpuPerRequest,
): { from: Sample; to: Sample } | undefined => {
  let best: { from: Sample; to: Sample } | undefined
  for (let i = 0, j = 0; i < samples.length; i++) {
    while (j < samples.length && samples[j].at - samples[i].at < seconds * 1000) j++
    if (j >= samples.length) break
    const window = { from: samples[i], to: samples[j] }
    if (!best || rate(window, key) > rate(best, key)) best = window
  }
  if (!best && samples.length > 1) best = { from: samples[0], to: samples[samples.length - 1] }
  return best
}

/** A row from a measured run, with rps and p99 ratios against the named baselines. */
export const rowOf = (
  base: Omit<
    Row,
    "result" | "ratios" | "p99Ratios" | "serverCpuPercent" | "cpuUsPerRequest" | "threadCpuPercent"
  >,
  measured: Measured,
  baselines: Record<string, LoadResult | undefined> = {},
): Row => {
  const ratios: Record<string, number> = {}
  const p99Ratios: Record<string, number> = {}
  for (const [name, b] of Object.entries(baselines)) {
    if (!b || b.rps === 0) continue
    ratios[name] = Math.round((measured.result.rps / b.rps) * 1000) / 1000
    if (b.latency.p99Ms > 0) {
      p99Ratios[name] = Math.round((measured.result.latency.p99Ms / b.latency.p99Ms) * 100) / 100
    }
  }
  return {
    ...base,
    result: measured.result,
    ratios,
    p99Ratios,
    serverCpuPercent: measured.serverCpuPercent,
    cpuUsPerRequest: measured.cpuUsPerRequest,
    threadCpuPercent: measured.threadCpuPercent,
  }
}

/**
 * The baseline a 90/10 mix is bounded by when reads cost a NATS hop and writes a batched
 * append: the harmonic combination of the two rates (time per request adds up).
 */
export const mixBaseline = (read?: LoadResult, write?: LoadResult): LoadResult | undefined => {
  if (!read || !write || read.rps === 0 || write.rps === 0) return undefined
  const rps = Math.round(1 / (0.9 / read.rps + 0.1 / write.rps))
  const p99Ms = Math.max(read.latency.p99Ms, write.latency.p99Ms)
  return { ...read, rps, latency: { ...read.latency, p99Ms }, client: "derived" }
}

/**
 * A node's committed command batches and the commands they carried (its `/metrics` counters).
 * A split node's actor isolate reports its counts every 250 ms, so a read right after a run
 * first waits `settleMs` for that report (none is needed before the first writing run).
 */
export const readBatchCounters = async (
  port: number,
  settleMs = 300,
): Promise<{ batches: number; commands: number }> => {
  if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs))
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const counter = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? NaN)
  return {
    batches: counter("hamlet_command_batches_total"),
    commands: counter("hamlet_batched_commands_total"),
  }
}

/** Commands per committed batch between two reads of the counters (the group commit's batch size). */
export const commandsPerBatch = (
  before: { batches: number; commands: number },
  after: { batches: number; commands: number },
): number | undefined => {
  const batches = after.batches - before.batches
  return batches > 0 ? Math.round(((after.commands - before.commands) / batches) * 10) / 10 : undefined
}

/** POSTs `count` SubmitItem requests so reads return a realistic page (50 items). */
export const seedItems = async (port: number, host: string, count: number): Promise<void> => {
  const conn = await HttpConnection.open(port)
  try {
    for (let i = 0; i < count; i++) {
      const status = await conn.send(
        encodeRequest({
          method: "POST",
          path: "/api/SubmitItem",
          host,
          body: JSON.stringify({ title: `seed item ${i}`, tags: ["bench"] }),
        }),
      )
      if (status !== 200) throw new Error(`seeding ${host} failed with HTTP ${status}`)
    }
  } finally {
    conn.close()
  }
}

/**
 * What GetFeed answers for `host`: the ids it lists (the targets of the distinct-read path)
 * and the size of its reply body (what the feed-sized NATS hop baseline carries).
 */
export const readFeed = (port: number, host: string): Promise<{ ids: Array<string>; bytes: number }> =>
  new Promise((resolve, reject) => {
    const request = http.get(
      { host: "127.0.0.1", port, path: "/api/GetFeed", headers: { host } },
      (response) => {
        let body = ""
        response.setEncoding("utf8")
        response.on("data", (chunk: string) => body += chunk)
        response.on("end", () => {
          try {
            resolve({
              ids: (JSON.parse(body) as { items: Array<{ id: string }> }).items.map((i) => i.id),
              bytes: new TextEncoder().encode(body).byteLength,
            })
          } catch (error) {
            reject(error)
          }
        })
      },
    )
    request.on("error", reject)
  })
