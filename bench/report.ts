/**
 * The run's output: a table on the terminal and a JSON file under bench/results/ that
 * records the machine (cores, memory, OS), the versions (Deno, V8, Effect, drivers) and
 * whether embedded or real services ran, next to every row and profile.
 */
import type { BenchSettings, Row } from "./context.ts"
import type { ProfileSummary } from "./profile.ts"

const root = new URL("..", import.meta.url).pathname

const memTotalMb = (): number => {
  try {
    const kb = Number(/MemTotal:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1])
    return Math.round(kb / 1024)
  } catch {
    return NaN
  }
}

const cpuModel = (): string => {
  try {
    return /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "unknown"
  } catch {
    return "unknown"
  }
}

/** Versions from deno.json's import map (the npm specifiers the server runs with). */
const importVersions = (): Record<string, string> => {
  const json = JSON.parse(Deno.readTextFileSync(`${root}deno.json`)) as { imports: Record<string, string> }
  const pick = (name: string) => /@([\d.]+[^/]*)$/.exec(json.imports[name] ?? "")?.[1] ?? "?"
  return {
    effect: pick("effect"),
    postgres: pick("postgres"),
    nats: pick("@nats-io/transport-node"),
    pglite: pick("@electric-sql/pglite"),
  }
}

export interface RunRecord {
  readonly startedAt: string
  readonly elapsedS: number
  readonly machine: Record<string, string | number>
  readonly versions: Record<string, string>
  readonly services: { readonly store: string; readonly bus: string; readonly loadClient: string }
  readonly settings: BenchSettings
  readonly rows: ReadonlyArray<Row>
  readonly profiles: ReadonlyArray<ProfileSummary>
}

export const makeRecord = (
  settings: BenchSettings,
  startedAt: Date,
  rows: ReadonlyArray<Row>,
  profiles: ReadonlyArray<ProfileSummary>,
): RunRecord => ({
  startedAt: startedAt.toISOString(),
  elapsedS: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
  machine: {
    cores: navigator.hardwareConcurrency,
    memoryMb: memTotalMb(),
    cpu: cpuModel(),
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
  },
  versions: {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    ...importVersions(),
  },
  services: {
    store: settings.databaseUrl ? "postgres (real)" : "pglite (embedded)",
    bus: settings.natsUrl ? "nats (real)" : "in-process (embedded)",
    loadClient: settings.client === "wrk"
      ? "wrk (1 thread), separate process"
      : "deno client, separate process",
  },
  // service URLs may carry credentials, and results are committed: only whether one was set
  settings: {
    ...settings,
    databaseUrl: settings.databaseUrl ? "<set>" : undefined,
    natsUrl: settings.natsUrl ? "<set>" : undefined,
  },
  rows,
  profiles,
})

const pad = (s: string, n: number) => s.length >= n ? s : s + " ".repeat(n - s.length)
const padL = (s: string, n: number) => s.length >= n ? s : " ".repeat(n - s.length) + s
const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits)

/** The terminal table: one line per row; notes and values where there is no load result. */
export const formatTable = (record: RunRecord): string => {
  const lines: Array<string> = []
  const { machine, versions, services } = record
  lines.push(
    `Hamlet bench · ${machine.cores} cores, ${machine.memoryMb} MB · deno ${versions.deno}, effect ${versions.effect}` +
      ` · store ${services.store}, bus ${services.bus} · load: ${services.loadClient}`,
  )
  lines.push(
    pad("scenario", 36) + padL("clients", 8) + padL("rps", 9) + padL("p50 ms", 9) + padL("p99 ms", 9) +
      padL("p999 ms", 9) + padL("err", 6) + padL("srv cpu%", 9) + padL("gen cpu%", 9) +
      padL("js thr%", 8) + padL("cpu µs/req srv/pg/nats", 24) + "  ratio rps (p99)",
  )
  let group = ""
  for (const row of record.rows) {
    if (row.group !== group) {
      group = row.group
      lines.push(`-- ${group}`)
    }
    const r = row.result
    if (!r) {
      const values = row.values ? Object.entries(row.values).map(([k, v]) => `${k}=${v}`).join("  ") : ""
      lines.push(pad(row.name, 36) + "  " + [values, row.note].filter(Boolean).join("  "))
      continue
    }
    const batch = row.values?.["commands/batch"]
    const ratios = Object.entries(row.ratios ?? {})
      .map(([k, v]) => `${k} ${v.toFixed(2)} (${fmt(row.p99Ratios?.[k], 1)})`)
      .concat(batch === undefined ? [] : [`${batch} commands/batch`]).join(", ")
    lines.push(
      pad(row.name, 36) + padL(String(row.clients ?? ""), 8) + padL(String(r.rps), 9) +
        padL(fmt(r.latency.p50Ms, 2), 9) + padL(fmt(r.latency.p99Ms, 2), 9) +
        padL(fmt(r.latency.p999Ms, 2), 9) +
        padL(String(r.errors), 6) + padL(fmt(row.serverCpuPercent), 9) + padL(fmt(r.clientCpuPercent), 9) +
        padL(threadSplit(row.threadCpuPercent), 8) + padL(cpuSplit(row.cpuUsPerRequest), 24) + "  " + ratios,
    )
  }
  for (const p of record.profiles) {
    lines.push(`-- profile: ${p.name} (${p.samples} samples)`)
    lines.push("   by area: " + Object.entries(p.byArea).map(([k, v]) => `${k} ${v}%`).join(", "))
    for (const t of p.top.slice(0, 10)) {
      lines.push(`   ${padL(t.percent.toFixed(1), 5)}%  ${t.fn}${t.via ? `  ← ${t.via}` : ""}`)
    }
  }
  lines.push(`elapsed ${record.elapsedS} s`)
  return lines.join("\n")
}

/** "server/postgres/nats" µs per request, "-" where a process was not measured. */
const cpuSplit = (cpu: Row["cpuUsPerRequest"]): string =>
  cpu ? [cpu.server, cpu.postgres, cpu.nats].map((us) => us === undefined ? "-" : String(us)).join("/") : ""

/** "main/worker" JavaScript thread CPU, percent of a core: "98/47", or "98" for a node in one isolate. */
const threadSplit = (threads: Row["threadCpuPercent"]): string =>
  threads
    ? [threads.main, ...(threads.worker === undefined ? [] : [threads.worker])]
      .map((p) => Number.isNaN(p) ? "-" : String(p)).join("/")
    : ""

/** Writes bench/results/<timestamp>.json and returns its path. */
export const writeRecord = async (record: RunRecord): Promise<string> => {
  const dir = `${root}bench/results`
  await Deno.mkdir(dir, { recursive: true })
  const path = `${dir}/${record.startedAt.replace(/[:.]/g, "-")}.json`
  await Deno.writeTextFile(path, JSON.stringify(record, null, 2) + "\n")
  return path
}
