/**
 * The closed-loop runner every load kind shares: N callers, each issuing its next call as
 * soon as the previous one answers, for a warm-up then a measured window. Only calls that
 * complete inside the window count, so rps = counted calls / window length.
 */
import { Histogram, type LatencySummary } from "./histogram.ts"

/** One concurrent client (a keep-alive connection, a NATS requester, an appender). */
export interface Caller {
  /** Issues one call; resolves with an HTTP-like status (2xx = success). */
  readonly call: () => Promise<number>
  readonly close: () => void
}

export interface Driver {
  readonly connect: (index: number) => Promise<Caller>
  readonly close: () => Promise<void>
}

export interface LoadResult {
  readonly requests: number
  readonly errors: number
  readonly statuses: Record<string, number>
  readonly durationS: number
  readonly rps: number
  readonly latency: LatencySummary
  /** CPU the load generator itself used during the run (percent of one core). */
  readonly clientCpuPercent: number
  readonly client: string
}

export interface LoadOptions {
  readonly connections: number
  readonly durationS: number
  readonly warmupS: number
}

const cpuMs = (): number => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

/** Runs `connections` closed loops against `driver`; failures count as errors, not throws. */
export const runClosedLoop = async (driver: Driver, options: LoadOptions): Promise<LoadResult> => {
  const callers = await Promise.all(Array.from({ length: options.connections }, (_, i) => driver.connect(i)))
  const histogram = new Histogram()
  const statuses: Record<string, number> = {}
  let requests = 0
  let errors = 0
  const start = performance.now()
  const measureFrom = start + options.warmupS * 1000
  const measureTo = measureFrom + options.durationS * 1000
  let cpuAtMeasure = cpuMs()
  let cpuMarked = false

  const loop = async (caller: Caller) => {
    for (;;) {
      const t0 = performance.now()
      if (t0 >= measureTo) return
      let status: number
      try {
        status = await caller.call()
      } catch {
        status = 599 // transport failure: the connection is likely gone, stop this loop
      }
      const t1 = performance.now()
      if (!cpuMarked && t1 >= measureFrom) {
        cpuMarked = true
        cpuAtMeasure = cpuMs()
      }
      if (t0 >= measureFrom && t1 <= measureTo) {
        requests++
        histogram.record(t1 - t0)
        statuses[status] = (statuses[status] ?? 0) + 1
        if (status < 200 || status >= 300) errors++
      }
      if (status === 599) {
        await new Promise((r) => setTimeout(r, 10))
        return
      }
    }
  }
  await Promise.all(callers.map(loop))
  const window = (measureTo - measureFrom) / 1000
  const cpuUsed = cpuMs() - cpuAtMeasure
  for (const c of callers) c.close()
  await driver.close()
  return {
    requests,
    errors,
    statuses,
    durationS: window,
    rps: Math.round(requests / window),
    latency: histogram.summary(),
    clientCpuPercent: Math.round((cpuUsed / (window * 1000)) * 100),
    client: "deno",
  }
}
