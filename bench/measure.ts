/**
 * One measured load run: the load generator in its own process while the servers' CPU is
 * sampled from /proc, plus the ratio arithmetic every scenario reports against baselines.
 */
import http from "node:http"
import type { BenchContext, Row } from "./context.ts"
import type { LoadResult } from "./driver.ts"
import { encodeRequest, HttpConnection } from "./http-client.ts"
import { type LoadSpec, runLoadProcess } from "./load.ts"
import { cpuSeconds } from "./processes.ts"

export interface Measured {
  readonly result: LoadResult
  /** Busiest window of the run's length, percent of one core, summed over `pids`. */
  readonly serverCpuPercent?: number
}

/** Runs `spec` (HTTP through ctx.client) while sampling the CPU of `pids` every 200 ms. */
export const measure = async (
  ctx: BenchContext,
  spec: LoadSpec,
  pids: ReadonlyArray<number> = [],
): Promise<Measured> => {
  const samples: Array<[number, number]> = []
  const sample = () => samples.push([performance.now(), pids.reduce((s, pid) => s + cpuSeconds(pid), 0)])
  sample()
  const timer = setInterval(sample, 200)
  try {
    const result = await runLoadProcess(spec, spec.kind === "http" ? ctx.client : "deno")
    sample()
    return { result, serverCpuPercent: pids.length ? busiestWindow(samples, spec.durationS) : undefined }
  } finally {
    clearInterval(timer)
  }
}

const busiestWindow = (samples: ReadonlyArray<[number, number]>, seconds: number): number => {
  let best = 0
  for (let i = 0, j = 0; i < samples.length; i++) {
    while (j < samples.length && samples[j][0] - samples[i][0] < seconds * 1000) j++
    if (j >= samples.length) break
    best = Math.max(best, (samples[j][1] - samples[i][1]) / ((samples[j][0] - samples[i][0]) / 1000))
  }
  if (best === 0 && samples.length > 1) {
    const [t0, c0] = samples[0]
    const [t1, c1] = samples[samples.length - 1]
    best = (c1 - c0) / ((t1 - t0) / 1000)
  }
  return Math.round(best * 100)
}

/** A row from a measured run, with rps and p99 ratios against the named baselines. */
export const rowOf = (
  base: Omit<Row, "result" | "ratios" | "p99Ratios" | "serverCpuPercent">,
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
  return { ...base, result: measured.result, ratios, p99Ratios, serverCpuPercent: measured.serverCpuPercent }
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
