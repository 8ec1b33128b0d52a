/**
 * The settings and shared state of one bench run (mode, services, load client, time
 * budget) and the row type every scenario reports. A row either has a LoadResult or a
 * note saying why not ("not available", "skipped: time budget").
 */
import type { LoadResult } from "./driver.ts"
import type { ScratchDatabases } from "./fixtures.ts"
import type { HttpClient } from "./load.ts"

export interface BenchSettings {
  readonly quick: boolean
  readonly client: HttpClient
  /** Admin URL of a real Postgres; unset = embedded PGlite. */
  readonly databaseUrl?: string
  /** A real NATS; unset = in-process bus. */
  readonly natsUrl?: string
  readonly durationS: number
  readonly warmupS: number
  readonly clients: ReadonlyArray<number>
  readonly hostCounts: ReadonlyArray<number>
  /** Write a CPU profile of the server during the read and write paths. */
  readonly profile: boolean
}

export interface BenchContext extends BenchSettings {
  readonly databases?: ScratchDatabases
  readonly tmp: string
  /** Wall-clock deadline (ms since epoch) after which optional steps are skipped. */
  readonly deadline: number
  readonly log: (line: string) => void
}

/** CPU per request, µs, by process: the server measured, this machine's Postgres and NATS. */
export interface ThreadCpu {
  readonly main: number
  readonly worker?: number
}

export interface CpuPerRequest {
  readonly server?: number
  readonly postgres?: number
  readonly nats?: number
}

export interface Row {
  readonly group: "baseline" | "path" | "scale" | "fleet" | "memory" | "replay" | "profile"
  readonly name: string
  readonly clients?: number
  readonly result?: LoadResult
  /** rps ÷ the baseline's rps at the same client count, by baseline name. */
  readonly ratios?: Record<string, number>
  /** p99 ÷ the baseline's p99 at the same client count, by baseline name. */
  readonly p99Ratios?: Record<string, number>
  /** Server CPU during the run, percent of one core (summed over nodes). */
  readonly serverCpuPercent?: number
  /** CPU per request, µs: the server, and Postgres and NATS when they run on this machine. */
  readonly cpuUsPerRequest?: CpuPerRequest
  /**
   * The server's JavaScript threads in that window, percent of one core (summed over nodes):
   * `main` runs the ingress (or the whole node, unsplit), `worker` the actor isolate. A thread
   * near 100 is the node's limit, whatever the machine's other cores do.
   */
  readonly threadCpuPercent?: ThreadCpu
  readonly values?: Record<string, number | string>
  readonly note?: string
}

/** Whether `seconds` more work fits before the deadline. */
export const fits = (ctx: BenchContext, seconds: number): boolean =>
  Date.now() + seconds * 1000 < ctx.deadline
