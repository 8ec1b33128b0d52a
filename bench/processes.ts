/**
 * Subprocesses under test — Hamlet nodes and the baseline servers — started as black boxes
 * with `deno run`, waited on until they answer, read through /proc (CPU ticks, resident
 * memory) and stopped by their own pid with SIGTERM (SIGKILL after a grace period).
 */
import { encodeRequest, HttpConnection } from "./http-client.ts"

export interface Proc {
  readonly pid: number
  readonly port: number
  readonly stop: () => Promise<void>
  /** Last lines of stderr, for error messages. */
  readonly stderrTail: () => string
  /** Whether the process has exited (a node that dies during start fails fast). */
  readonly hasExited: () => boolean
  /** Resolves when the process prints "ready" on stdout (baseline servers do). */
  readonly ready: Promise<void>
}

const root = new URL("..", import.meta.url).pathname

/** A free TCP port on 127.0.0.1. */
export const freePort = (): number => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 })
  const port = (listener.addr as Deno.NetAddr).port
  listener.close()
  return port
}

const spawn = (args: ReadonlyArray<string>, env: Record<string, string>, port: number): Proc => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...args],
    cwd: root,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn()
  const ready = Promise.withResolvers<void>()
  // keep draining stdout after "ready": a full pipe would block the process under test
  void (async () => {
    const decoder = new TextDecoder()
    let out = ""
    for await (const chunk of child.stdout) {
      if (out.length < 1000) out += decoder.decode(chunk)
      if (out.includes("ready")) ready.resolve()
    }
  })().catch(() => {})
  let tail = ""
  void (async () => {
    const decoder = new TextDecoder()
    for await (const chunk of child.stderr) tail = (tail + decoder.decode(chunk)).slice(-4000)
  })().catch(() => {})
  let hasExited = false
  child.status.then(() => (hasExited = true), () => (hasExited = true))
  let isStopped = false
  const stop = async () => {
    if (isStopped) return
    isStopped = true
    try {
      child.kill("SIGTERM")
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL")
      } catch { /* gone */ }
    }, 15_000)
    await child.status
    clearTimeout(timer)
  }
  return {
    pid: child.pid,
    port,
    stop,
    stderrTail: () => tail,
    ready: ready.promise,
    hasExited: () => hasExited,
  }
}

/** Polls `probe` until it returns true or the deadline passes. */
export const waitUntil = async (probe: () => Promise<boolean>, timeoutMs: number, what: string) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    let ok = false
    try {
      ok = await probe()
    } catch (e) {
      if ((e as Error).message.includes("exited")) throw e
    }
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/** One GET with a Host header; resolves with the status. */
export const httpStatus = async (port: number, host: string, path: string): Promise<number> => {
  const conn = await HttpConnection.open(port)
  try {
    return await conn.send(encodeRequest({ method: "GET", path, host }))
  } finally {
    conn.close()
  }
}

export interface HamletOptions {
  readonly configPath: string
  readonly databaseUrl?: string
  readonly natsUrl?: string
  readonly dataDir: string
  /** A host that must answer GetFeed with 200 before the node counts as up. */
  readonly probeHost: string
  readonly startTimeoutMs: number
  /** Extra `deno run` flags (e.g. `--cpu-prof`). */
  readonly denoFlags?: ReadonlyArray<string>
}

/**
 * The V8 flags of `deno task serve` (deno.json), so the bench measures what users run: young
 * generation capped at 8 MB per semi-space — measured: a split node with 10,000 hosts 328 →
 * 278 MB at rest, throughput unchanged.
 */
export const SERVE_FLAGS = ["--v8-flags=--max-semi-space-size=8"]

/** The subject root of this run's nodes: one fleet of their own on a shared NATS. */
export const BENCH_SUBJECT_ROOT = `bench_${Date.now().toString(36)}`

/** Starts one Hamlet node (`src/main.ts`) and waits until `probeHost` is served. */
export const startHamlet = async (options: HamletOptions): Promise<Proc> => {
  const port = freePort()
  const env: Record<string, string> = {
    PORT: String(port),
    HAMLET_CONFIG: options.configPath,
    HAMLET_DATA: options.dataDir,
    // the run's own: a `deno task serve` on the same NATS must not take a share of its requests
    HAMLET_SUBJECT_ROOT: BENCH_SUBJECT_ROOT,
    LOG_LEVEL: "Warn",
  }
  if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl
  if (options.natsUrl) env.NATS_URL = options.natsUrl
  const proc = spawn(["run", "-A", ...SERVE_FLAGS, ...(options.denoFlags ?? []), "src/main.ts"], env, port)
  try {
    await waitUntil(
      async () => {
        if (proc.hasExited()) throw new Error("Hamlet exited during start")
        return (await httpStatus(port, options.probeHost, "/api/GetFeed")) === 200
      },
      options.startTimeoutMs,
      `Hamlet on port ${port}`,
    )
  } catch (e) {
    await proc.stop()
    throw new Error(`${(e as Error).message}\n${proc.stderrTail()}`)
  }
  return proc
}

/** Starts a baseline server from bench/baselines.ts and waits for its "ready" line. */
export const startBaselineServer = async (mode: "hello" | "nats-echo", args: ReadonlyArray<string>) => {
  const port = mode === "hello" ? freePort() : 0
  const script = new URL("./baselines.ts", import.meta.url).pathname
  const proc = spawn(["run", "-A", script, mode, ...(mode === "hello" ? [String(port)] : args)], {}, port)
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${mode} did not start: ${proc.stderrTail()}`)), 30_000)
  })
  try {
    await Promise.race([proc.ready, timeout])
  } catch (e) {
    await proc.stop()
    throw e
  } finally {
    clearTimeout(timer)
  }
  return proc
}

/** CPU seconds (user + system) a process (or, given its stat file, a thread) has used so far. */
export const cpuSeconds = (pid: number, statFile = `/proc/${pid}/stat`): number => {
  try {
    const stat = Deno.readTextFileSync(statFile)
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime; CLK_TCK is 100 on Linux
  } catch {
    return NaN
  }
}

/**
 * CPU seconds a process' JavaScript threads have used so far: its main thread (the thread whose
 * id is the pid) and its Web Workers (Deno names their threads `worker-<n>`), from
 * /proc/<pid>/task; `worker` is undefined when it runs none.
 */
export const jsThreadCpuSeconds = (pid: number): { main: number; worker?: number } => {
  let worker: number | undefined
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const comm = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/comm`).trim()
        if (!comm.startsWith("worker-")) continue
        worker = (worker ?? 0) + (cpuSeconds(Number(task.name), `/proc/${pid}/task/${task.name}/stat`) || 0)
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    return { main: NaN }
  }
  return { main: cpuSeconds(pid, `/proc/${pid}/task/${pid}/stat`), worker }
}

/** Whether a service URL names this machine, so its processes are in /proc to be measured. */
export const isLocalService = (url: string | undefined): boolean => {
  if (!url) return false
  const host = URL.parse(url)?.hostname ?? URL.parse(`nats://${url}`)?.hostname
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]"
}

/** What a scenario's CPU split charges: the local services it talks to. */
export interface ServiceUse {
  readonly postgres: boolean
  readonly nats: boolean
  /**
   * Postgres client backends are charged only when connected to a database named with this
   * prefix (the run's scratch databases): another client's queries on the machine are not the
   * run's. The server's own processes (WAL writer, checkpointer…) are always charged.
   */
  readonly databasePrefix?: string
}

/**
 * A client backend's process title names its user, database and client: `postgres: [cluster: ]<user>
 * <db> <addr>(<port>) …` (Debian names the cluster, upstream and Docker builds do not).
 */
const CLIENT_BACKEND = /^postgres: (?:\S+: )?\S+ (\S+) (?:\[local\]|\S+\(\d+\))/

/** The database a Postgres process title's client backend is connected to; undefined for the server's own processes. */
export const backendDatabase = (title: string): string | undefined => CLIENT_BACKEND.exec(title)?.[1]

/** Whether the Postgres process `pid` works for the run (see ServiceUse.databasePrefix). */
const isRunPostgres = (pid: string, prefix: string | undefined): boolean => {
  if (prefix === undefined) return true
  const database = backendDatabase(Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " "))
  return database === undefined || database.startsWith(prefix)
}

/**
 * CPU seconds used so far by this machine's Postgres processes (server and the run's backends)
 * and nats-server, found by command name in /proc; 0 for a service that does not run here, or
 * that the scenario does not use: an embedded run, or a baseline of another service, is not
 * charged for a local nats-server or Postgres it never talks to.
 */
export const localServiceCpuSeconds = (uses: ServiceUse): { postgres: number; nats: number } => {
  const used = { postgres: 0, nats: 0 }
  if (!uses.postgres && !uses.nats) return used
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue
    try {
      const comm = Deno.readTextFileSync(`/proc/${entry.name}/comm`).trim()
      if (comm === "postgres" && uses.postgres && isRunPostgres(entry.name, uses.databasePrefix)) {
        used.postgres += cpuSeconds(Number(entry.name)) || 0
      } else if (comm === "nats-server" && uses.nats) used.nats += cpuSeconds(Number(entry.name)) || 0
    } catch {
      // exited meanwhile
    }
  }
  return used
}

/** Resident memory in MB, from /proc/<pid>/status VmRSS. */
export const rssMb = (pid: number): number => {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`)
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1])
    return Math.round((kb / 1024) * 10) / 10
  } catch {
    return NaN
  }
}
