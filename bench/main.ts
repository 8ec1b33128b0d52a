/**
 * `deno task bench [--quick]`: measures Hamlet against baselines taken in the same run and
 * prints a table plus bench/results/<timestamp>.json. It reports; it never asserts timings.
 * `--quick` fits in under a minute (optional steps are skipped past a time budget).
 *
 *   deno task bench [--quick] [--client wrk|deno] [--profile] [--embedded]
 *     [--hosts 1,100,10000] [--clients 1,32,256] [--duration <s>] [--replay-events <n>]
 *     [--only baseline,path,scale,fleet,replay,profile] [--no-save]
 *   DATABASE_URL / NATS_URL (or --database-url / --nats-url) select real services; scratch
 *   databases hamlet_bench_<x> are created on that server and dropped at the end.
 */
import { parseArgs } from "node:util"
import type { BenchContext, BenchSettings, Row } from "./context.ts"
import { makeTemp, removeTemp, ScratchDatabases } from "./fixtures.ts"
import type { ProfileSummary } from "./profile.ts"
import { formatTable, makeRecord, writeRecord } from "./report.ts"
import { runFleet, runReplay, runScale } from "./scale.ts"
import { type Baselines, runBaselines, runPaths, runProfiles } from "./scenarios.ts"
import { hasWrk } from "./wrk.ts"

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    client: { type: "string" },
    profile: { type: "boolean" },
    embedded: { type: "boolean", default: false },
    "database-url": { type: "string" },
    "nats-url": { type: "string" },
    hosts: { type: "string" },
    clients: { type: "string" },
    duration: { type: "string" },
    "replay-events": { type: "string" },
    only: { type: "string" },
    "no-save": { type: "boolean", default: false },
  },
})

const list = (s: string | undefined, fallback: Array<number>) => s ? s.split(",").map(Number) : fallback
const quick = values.quick!
const client = values.client === "deno" || values.client === "wrk"
  ? values.client
  : (await hasWrk() ? "wrk" : "deno")
const settings: BenchSettings = {
  quick,
  client,
  databaseUrl: values.embedded ? undefined : values["database-url"] ?? Deno.env.get("DATABASE_URL"),
  natsUrl: values.embedded ? undefined : values["nats-url"] ?? Deno.env.get("NATS_URL"),
  durationS: Number(values.duration ?? (quick ? 1 : 5)),
  warmupS: quick ? 0.3 : 1,
  clients: list(values.clients, [1, 32, 256]),
  hostCounts: list(values.hosts, quick ? [1, 100] : [1, 100, 10_000]),
  profile: values.profile ?? !quick,
}
const only = values.only ? new Set(values.only.split(",")) : undefined
const wants = (group: Row["group"]) => !only || only.has(group)
const replayEvents = Number(values["replay-events"] ?? (quick ? 20_000 : 200_000))

const startedAt = new Date()
const tmp = await makeTemp("run")
const ctx: BenchContext = {
  ...settings,
  databases: settings.databaseUrl ? new ScratchDatabases(settings.databaseUrl) : undefined,
  tmp,
  // quick: leave room under 60 s for process exits and the report
  deadline: startedAt.getTime() + (quick ? 48_000 : 30 * 60_000),
  log: (line) => console.error(`[${((Date.now() - startedAt.getTime()) / 1000).toFixed(1)}s] ${line}`),
}

const rows: Array<Row> = []
const profiles: Array<ProfileSummary> = []
let isServerBroken = false

/** Runs one scenario; a failure becomes a row note instead of ending the run. */
const step = async <A>(name: string, group: Row["group"], run: () => Promise<A>): Promise<A | undefined> => {
  try {
    return await run()
  } catch (e) {
    ctx.log(`${name} failed: ${(e as Error).message}`)
    rows.push({ group, name, note: `failed: ${(e as Error).message.split("\n")[0].slice(0, 200)}` })
    return undefined
  }
}

const cleanup = async () => {
  await ctx.databases?.dropAll().catch(() => {})
  await removeTemp(tmp)
}
Deno.addSignalListener("SIGINT", () => void cleanup().finally(() => Deno.exit(130)))

try {
  ctx.log(
    `bench ${quick ? "--quick" : "(full)"}; load client ${client}; ` +
      `store ${settings.databaseUrl ? "postgres" : "pglite"}; bus ${
        settings.natsUrl ? "nats" : "in-process"
      }`,
  )
  const base = wants("baseline") ? await step("baselines", "baseline", () => runBaselines(ctx)) : undefined
  rows.push(...(base?.rows ?? []))
  const baselines: Baselines = base?.baselines ?? new Map()
  if (wants("path")) {
    const paths = await step("hamlet paths", "path", () => runPaths(ctx, baselines))
    if (paths) rows.push(...paths)
    else isServerBroken = true
  }
  if (!isServerBroken) {
    if (wants("scale")) rows.push(...(await step("scale", "scale", () => runScale(ctx, baselines)) ?? []))
    if (wants("fleet")) rows.push(...(await step("fleet", "fleet", () => runFleet(ctx, baselines)) ?? []))
    if (wants("replay")) {
      rows.push(...(await step("replay", "replay", () => runReplay(ctx, replayEvents)) ?? []))
    }
    if (ctx.profile && wants("profile")) {
      profiles.push(...(await step("profile", "profile", () => runProfiles(ctx)) ?? []))
    }
  }
} finally {
  await cleanup()
}

const record = makeRecord(settings, startedAt, rows, profiles)
console.log(formatTable(record))
if (!values["no-save"]) console.log(`saved ${await writeRecord(record)}`)
Deno.exit(isServerBroken ? 1 : 0)
