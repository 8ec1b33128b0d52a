/**
 * The baselines and Hamlet's request paths: GetFeed (read; identical concurrent requests
 * share a run), GetItem over 50 ids (reads that mostly do not), SubmitItem (write) and a
 * 90/10 mix over HTTP at each client count, each row carrying its ratio to the baseline measured
 * in the same run (hello for HTTP, NATS hop for reads, batched append for writes).
 */
import { join } from "node:path"
import { startEmbeddedPostgres } from "../src/store/pglite.ts"
import { type BenchContext, fits, type Row } from "./context.ts"
import type { LoadResult } from "./driver.ts"
import { sampleConfigPath } from "./fixtures.ts"
import type { HttpTarget, LoadSpec } from "./load.ts"
import {
  commandsPerBatch,
  measure,
  mixBaseline,
  readBatchCounters,
  readFeed,
  rowOf,
  seedItems,
} from "./measure.ts"
import { freePort, type Proc, startBaselineServer, startHamlet } from "./processes.ts"
import { profileDuring, type ProfileSummary } from "./profile.ts"

export const READ: HttpTarget = { method: "GET", path: "/api/GetFeed", weight: 1 }
export const WRITE: HttpTarget = {
  method: "POST",
  path: "/api/SubmitItem",
  body: JSON.stringify({ title: "bench item", tags: ["bench"] }),
  weight: 1,
}
export const MIX: ReadonlyArray<HttpTarget> = [{ ...READ, weight: 9 }, { ...WRITE, weight: 1 }]
/** The GetFeed path's targets (its rows also get a ratio to the feed-sized hop). */
const READS_FEED: ReadonlyArray<HttpTarget> = [READ]

/** Baseline results by name ("hello", "nats", "pg") and client count. */
export type Baselines = Map<string, Map<number, LoadResult>>

const record = (baselines: Baselines, name: string, clients: number, result: LoadResult) => {
  if (!baselines.has(name)) baselines.set(name, new Map())
  baselines.get(name)!.set(clients, result)
}

/** One baseline at every client count: measured, recorded under `key`, reported as `name`. */
const measureAll = async (
  ctx: BenchContext,
  into: { readonly rows: Array<Row>; readonly baselines: Baselines },
  key: string,
  name: string,
  spec: (clients: number) => LoadSpec,
  pids: Array<number>,
  services: { readonly postgres: boolean; readonly nats: boolean },
) => {
  for (const clients of ctx.clients) {
    ctx.log(`baseline ${name} × ${clients}`)
    const m = await measure(ctx, spec(clients), pids, services)
    record(into.baselines, key, clients, m.result)
    into.rows.push(rowOf({ group: "baseline", name, clients }, m))
  }
}

/** NATS request/reply to a bare responder whose replies are `replyBytes` long (default: tiny). */
const measureNatsHop = async (
  ctx: BenchContext,
  into: { readonly rows: Array<Row>; readonly baselines: Baselines },
  key: string,
  name: string,
  replyBytes?: number,
) => {
  const url = ctx.natsUrl!
  const subject = `bench.echo.${Date.now()}`
  const echo = await startBaselineServer(
    "nats-echo",
    replyBytes === undefined ? [url, subject] : [url, subject, String(replyBytes)],
  )
  try {
    await measureAll(
      ctx,
      into,
      key,
      name,
      (connections) => ({
        kind: "nats",
        url,
        subject,
        connections,
        durationS: ctx.durationS,
        warmupS: ctx.warmupS,
      }),
      [echo.pid],
      { postgres: false, nats: true },
    )
  } finally {
    await echo.stop()
  }
}

export const runBaselines = async (
  ctx: BenchContext,
): Promise<{ rows: Array<Row>; baselines: Baselines }> => {
  const rows: Array<Row> = []
  const baselines: Baselines = new Map()
  const into = { rows, baselines }
  const timing = { durationS: ctx.durationS, warmupS: ctx.warmupS }

  const hello = await startBaselineServer("hello", [])
  try {
    await measureAll(
      ctx,
      into,
      "hello",
      "http-hello",
      (connections) => ({
        kind: "http",
        port: hello.port,
        hosts: ["localhost"],
        targets: [{ method: "GET", path: "/", weight: 1 }],
        connections,
        ...timing,
      }),
      [hello.pid],
      { postgres: false, nats: false },
    )
  } finally {
    await hello.stop()
  }

  if (ctx.natsUrl) {
    await measureNatsHop(ctx, into, "nats", "nats-hop")
  } else {
    rows.push({ group: "baseline", name: "nats-hop", note: "not available: no NATS_URL (in-process bus)" })
  }

  if (ctx.databases) {
    const url = await ctx.databases.create("append")
    await measureAll(
      ctx,
      into,
      "pg",
      "pg-append",
      (connections) => ({ kind: "pg", url, table: "bench_append", connections, ...timing }),
      [],
      { postgres: true, nats: false },
    )
  } else {
    // the same append against the embedded store, served over its socket as the node's own is
    // (a data directory, not memory: the node's store is on disk too), in this process
    const embedded = await startEmbeddedPostgres(join(ctx.tmp, "append-pglite"))
    try {
      await measureAll(
        ctx,
        into,
        "pg",
        "pg-append (embedded PGlite)",
        (connections) => ({
          kind: "pg",
          url: embedded.url,
          table: "bench_append",
          maxConnections: 1,
          connections,
          ...timing,
        }),
        [Deno.pid],
        { postgres: false, nats: false },
      )
    } finally {
      await embedded.close()
    }
  }
  return { rows, baselines }
}

/** Starts one node on the sample config (fresh scratch database or PGlite dir). */
export const startSampleNode = async (ctx: BenchContext, label: string, denoFlags: Array<string> = []) =>
  startHamlet({
    configPath: sampleConfigPath,
    databaseUrl: ctx.databases ? await ctx.databases.create(label) : undefined,
    natsUrl: ctx.natsUrl,
    dataDir: await Deno.makeTempDir({ dir: ctx.tmp, prefix: `${label}-` }),
    probeHost: "blog.example.com",
    startTimeoutMs: 120_000,
    denoFlags,
  })

const HOST = "blog.example.com"

export const runPaths = async (
  ctx: BenchContext,
  baselines: Baselines,
): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  const node: Proc = await startSampleNode(ctx, "paths")
  try {
    await seedItems(node.port, HOST, 50)
    const feed = await readFeed(node.port, HOST)
    // GetFeed's reply is ~9 KB, the plain hop's 35 bytes: a hop carrying the same bytes is the
    // transport limit of that read (measured here, the node idle, once its size is known)
    if (ctx.natsUrl && baselines.has("nats")) {
      await measureNatsHop(
        ctx,
        { rows, baselines },
        "nats-feed",
        `nats-hop, ${feed.bytes} B replies`,
        feed.bytes,
      )
    }
    // GetItem over 50 ids: concurrent requests rarely match, so little is coalesced
    const distinct = feed.ids.map((id): HttpTarget => ({
      method: "GET",
      path: `/api/GetItem?id=${encodeURIComponent(id)}`,
      weight: 1,
    }))
    const paths = [
      { name: "read GetFeed", targets: READS_FEED, service: "nats" },
      { name: "read GetItem ×50 ids", targets: distinct, service: "nats" },
      { name: "write SubmitItem", targets: [WRITE], service: "pg" },
      { name: "mix 90/10", targets: MIX, service: "mix" },
    ] as const
    let counters: Awaited<ReturnType<typeof readBatchCounters>> | undefined
    for (const path of paths) {
      for (const clients of ctx.clients) {
        // past the budget (a slow machine), only the 32-client runs the targets name still go
        if (clients !== 32 && !fits(ctx, ctx.durationS + ctx.warmupS + 1)) {
          rows.push({
            group: "path",
            name: path.name,
            clients,
            note: `skipped: time budget (${clients} clients)`,
          })
          continue
        }
        ctx.log(`hamlet ${path.name} × ${clients}`)
        const spec = {
          kind: "http" as const,
          port: node.port,
          hosts: [HOST],
          targets: path.targets,
          connections: clients,
          durationS: ctx.durationS,
          warmupS: ctx.warmupS,
        }
        const service = path.service === "mix"
          ? mixBaseline(baselines.get("nats")?.get(clients), baselines.get("pg")?.get(clients))
          : baselines.get(path.service)?.get(clients)
        // the writing runs follow one another on this node: each one's counters after are the next's before
        const before = path.service === "nats" ? undefined : counters ?? await readBatchCounters(node.port, 0)
        const m = await measure(ctx, spec, [node.pid])
        if (before) counters = await readBatchCounters(node.port)
        const batch = before && counters && commandsPerBatch(before, counters)
        const values = batch === undefined ? {} : { values: { "commands/batch": batch } }
        rows.push(rowOf({ group: "path", name: path.name, clients, ...values }, m, {
          hello: baselines.get("hello")?.get(clients),
          [path.service === "nats" ? "nats-hop" : path.service === "pg" ? "pg-append" : "nats+pg"]: service,
          ...(path.targets === READS_FEED
            ? { "same-size hop": baselines.get("nats-feed")?.get(clients) }
            : {}),
        }))
      }
    }
  } finally {
    await node.stop()
  }
  return rows
}

/** Profiles a separate node (the inspector costs a little) on the read and write paths at 32 clients. */
export const runProfiles = async (ctx: BenchContext): Promise<Array<ProfileSummary>> => {
  const inspectPort = freePort()
  const node = await startSampleNode(ctx, "profile", [`--inspect=127.0.0.1:${inspectPort}`])
  const profiles: Array<ProfileSummary> = []
  try {
    await seedItems(node.port, HOST, 50)
    for (const [name, target] of [["read GetFeed", READ], ["write SubmitItem", WRITE]] as const) {
      ctx.log(`profiling ${name} × 32`)
      const spec = {
        kind: "http" as const,
        port: node.port,
        hosts: [HOST],
        targets: [target],
        connections: 32,
        durationS: ctx.durationS,
        warmupS: 0,
      }
      profiles.push(await profileDuring(inspectPort, name, () => measure(ctx, spec, [node.pid])))
    }
  } finally {
    await node.stop()
  }
  return profiles
}
