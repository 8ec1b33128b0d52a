/**
 * Scale scenarios: the 90/10 mix spread over 1, 100 and 10,000 hosts (start time, resident
 * memory at rest, throughput), one node against two nodes on one NATS and Postgres, and
 * replay/verify speed through the audit CLI when it exists.
 */
import { join } from "node:path"
import { startEmbeddedPostgres } from "../src/store/pglite.ts"
import { type BenchContext, type CpuPerRequest, fits, type Row } from "./context.ts"
import type { LoadResult } from "./driver.ts"
import { benchHosts, makeTemp, preRegisterHosts, removeTemp, writeScaleConfig } from "./fixtures.ts"
import { measure, type Measured, rowOf, seedItems } from "./measure.ts"
import { type Proc, rssMb, startHamlet } from "./processes.ts"
import { type Baselines, MIX } from "./scenarios.ts"

const FLEET_CLIENTS = 32
/** Above this many hosts, hosts are registered in SQL first and the node start is a restart. */
const PRE_REGISTER_FROM = 1000
/** Rough first-registration cost per host through a node, for the time-budget check. */
const SECONDS_PER_HOST_RESTART = 0.004

/** Verify gets this long in a full run; past it the figure is reported as a bound. */
const VERIFY_TIMEOUT_S = 240

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms))

const startScaleNode = async (ctx: BenchContext, hosts: ReadonlyArray<string>, dir: string) => {
  const url = ctx.databases ? await ctx.databases.create(`scale${hosts.length}`) : undefined
  const common = { databaseUrl: url, natsUrl: ctx.natsUrl, probeHost: hosts[0], startTimeoutMs: 900_000 }
  let preRegisteredS: number | undefined
  if (url && hosts.length >= PRE_REGISTER_FROM) {
    // migrate with a one-host node, then register the rest in SQL, then restart with all
    const first = await startHamlet({
      ...common,
      configPath: await writeScaleConfig(`${dir}/one`, hosts.slice(0, 1)),
      dataDir: `${dir}/data`,
    })
    await first.stop()
    const t0 = performance.now()
    await preRegisterHosts(url, "horatio", hosts)
    preRegisteredS = (performance.now() - t0) / 1000
  }
  const t0 = performance.now()
  const node = await startHamlet({
    ...common,
    configPath: await writeScaleConfig(`${dir}/all`, hosts),
    dataDir: `${dir}/data`,
  })
  return { node, startS: (performance.now() - t0) / 1000, preRegisteredS }
}

/** `measured`'s CPU per request, over `rps` requests a second instead of its own. */
const spread = (measured: Measured, rps: number): CpuPerRequest | undefined => {
  const own = measured.cpuUsPerRequest
  if (!own || rps === 0) return undefined
  const scale = (us?: number) => us === undefined ? undefined : Math.round((us * measured.result.rps) / rps)
  return { server: scale(own.server), postgres: scale(own.postgres), nats: scale(own.nats) }
}

export const runScale = async (ctx: BenchContext, baselines: Baselines): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  const rssByHosts = new Map<number, number>()
  /** Whether a node's resident memory at rest was above what it had after load (not settled). */
  const isUnsettled = new Map<number, boolean>()
  /** The mix over one host: what the mix over more hosts is a ratio to (throughput should stay flat). */
  let oneHost: LoadResult | undefined
  for (const n of ctx.hostCounts) {
    if (n >= PRE_REGISTER_FROM && !ctx.databases) {
      rows.push({ group: "scale", name: `mix × ${n} hosts`, note: "not available: needs a real Postgres" })
      continue
    }
    if (!fits(ctx, 10 + n * SECONDS_PER_HOST_RESTART + ctx.durationS)) {
      rows.push({ group: "scale", name: `mix × ${n} hosts`, note: "skipped: time budget" })
      continue
    }
    const dir = await makeTemp(`scale${n}`)
    let node: Proc | undefined
    try {
      ctx.log(`scale: starting a node with ${n} hosts`)
      const started = await startScaleNode(ctx, benchHosts(n), dir)
      node = started.node
      await settle(ctx.quick ? 500 : 2000)
      const rss = rssMb(node.pid)
      rssByHosts.set(n, rss)
      rows.push({
        group: "memory",
        name: `rss at rest, ${n} hosts`,
        values: {
          rssMb: rss,
          startS: Math.round(started.startS * 10) / 10,
          ...(started.preRegisteredS === undefined
            ? {}
            : { sqlPreRegisterS: Math.round(started.preRegisteredS * 10) / 10 }),
        },
      })
      ctx.log(`scale: mix × ${FLEET_CLIENTS} over ${n} hosts`)
      const spec = {
        kind: "http" as const,
        port: node.port,
        hosts: benchHosts(n),
        targets: MIX,
        connections: FLEET_CLIENTS,
        durationS: ctx.durationS,
        warmupS: ctx.warmupS,
      }
      const mixRow = (name: string, measured: Measured) =>
        rowOf({ group: "scale", name, clients: FLEET_CLIENTS }, measured, {
          hello: baselines.get("hello")?.get(FLEET_CLIENTS),
          ...(n > 1 ? { "1 host": oneHost } : {}),
        })
      const m = await measure(ctx, spec, [node.pid])
      if (n === 1) oneHost = m.result
      rows.push(mixRow(`mix × ${n} hosts`, m))
      if (m.result.rps * ctx.durationS <= n && fits(ctx, ctx.durationS + ctx.warmupS + 5)) {
        // the load goes round the hosts in order, from the first, in the warm-up and in the run: with
        // fewer requests than hosts, the run above met most hosts for the first time (their actors
        // built, caches cold). Run again at once: the same hosts, their actors still up (they
        // passivate after 30 s idle)
        ctx.log(`scale: mix × ${FLEET_CLIENTS} over ${n} hosts again, actors warm`)
        rows.push(mixRow(`mix × ${n} hosts, again`, await measure(ctx, spec, [node.pid])))
      }
      const afterLoad = rssMb(node.pid)
      // the embedded store's WASM heap is largest just after start, until traffic lets it shrink
      isUnsettled.set(n, rss > afterLoad)
      rows.push({ group: "memory", name: `rss after load, ${n} hosts`, values: { rssMb: afterLoad } })
    } finally {
      await node?.stop()
      await removeTemp(dir)
    }
  }
  const one = rssByHosts.get(1)
  for (const [n, rss] of rssByHosts) {
    if (one === undefined || n <= 1) continue
    if (isUnsettled.get(1) || isUnsettled.get(n)) {
      rows.push({
        group: "memory",
        name: `per idle host actor (${n} vs 1 host)`,
        note: "not measured: memory at rest was above memory after load (the heap had not settled)",
      })
      continue
    }
    rows.push({
      group: "memory",
      name: `per idle host actor (${n} vs 1 host)`,
      values: { kbPerHost: Math.round(((rss - one) * 1024) / (n - 1)) },
    })
  }
  return rows
}

export const runFleet = async (ctx: BenchContext, baselines: Baselines): Promise<Array<Row>> => {
  const name = "mix, 1 node vs 2 nodes"
  if (!ctx.natsUrl || !ctx.databases) {
    return [{ group: "fleet", name, note: "not available: needs real NATS and Postgres" }]
  }
  if (!fits(ctx, 15 + 3 * (ctx.durationS + ctx.warmupS))) {
    return [{ group: "fleet", name, note: "skipped: time budget" }]
  }
  const url = await ctx.databases.create("fleet")
  const nodes: Array<Proc> = []
  const host = "blog.example.com"
  const base = {
    configPath: new URL("../config.json", import.meta.url).pathname,
    databaseUrl: url,
    natsUrl: ctx.natsUrl,
  }
  const spec = (port: number, connections: number) => ({
    kind: "http" as const,
    port,
    hosts: [host, "news.example.com"],
    targets: MIX,
    connections,
    durationS: ctx.durationS,
    warmupS: ctx.warmupS,
  })
  const hello = baselines.get("hello")?.get(FLEET_CLIENTS)
  try {
    const startNode = async () => {
      const dataDir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: `fleet${nodes.length}-` })
      nodes.push(await startHamlet({ ...base, dataDir, probeHost: host, startTimeoutMs: 120_000 }))
    }
    // the second node starts only after the one-node run: a running node's host actors
    // join the queue group and would take half the requests even without ingress traffic
    await startNode()
    await seedItems(nodes[0].port, host, 50)
    ctx.log(`fleet: one node × ${FLEET_CLIENTS}`)
    const single = await measure(ctx, spec(nodes[0].port, FLEET_CLIENTS), [nodes[0].pid])
    await startNode()
    ctx.log(`fleet: two nodes × ${FLEET_CLIENTS / 2} each`)
    const [a, b] = await Promise.all([
      measure(ctx, spec(nodes[0].port, FLEET_CLIENTS / 2), nodes.map((n) => n.pid)),
      measure(ctx, spec(nodes[1].port, FLEET_CLIENTS / 2)),
    ])
    const combined = {
      ...a.result,
      requests: a.result.requests + b.result.requests,
      errors: a.result.errors + b.result.errors,
      rps: a.result.rps + b.result.rps,
      latency: { ...a.result.latency, p99Ms: Math.max(a.result.latency.p99Ms, b.result.latency.p99Ms) },
      clientCpuPercent: a.result.clientCpuPercent + b.result.clientCpuPercent,
    }
    const oneRow = rowOf({ group: "fleet", name: "mix, ingress on 1 node", clients: FLEET_CLIENTS }, single, {
      hello,
    })
    const twoRow = rowOf(
      { group: "fleet", name: "mix, ingress on 2 nodes", clients: FLEET_CLIENTS },
      // a sampled both nodes (and the services) while b ran too: spread that over both runs' requests
      {
        result: combined,
        serverCpuPercent: a.serverCpuPercent,
        cpuUsPerRequest: spread(a, combined.rps),
        threadCpuPercent: a.threadCpuPercent,
      },
      { hello, "1 node": single.result },
    )
    const perCore = single.serverCpuPercent
      ? Math.round(single.result.rps / (single.serverCpuPercent / 100))
      : 0
    return [oneRow, twoRow, {
      group: "fleet",
      name: "on paper",
      values: {
        cores: navigator.hardwareConcurrency,
        rpsPerServerCore: perCore,
        note: "2 nodes need ~2× the one-node server CPU plus load-generator CPU; " +
          "with fewer cores than that the second node cannot add throughput",
      },
    }]
  } finally {
    for (const n of nodes) await n.stop()
  }
}

/**
 * Where the replay runs: a scratch database on the real Postgres, or (embedded defaults) a PGlite
 * data directory, seeded over its socket and then opened by the CLI in its own process as
 * `HAMLET_DATA`, as a user of the embedded server would run it.
 */
const replayStore = async (
  ctx: BenchContext,
): Promise<{ seedUrl: string; cliEnv: Record<string, string>; release: () => Promise<void> }> => {
  if (ctx.databases) {
    const url = await ctx.databases.create("replay")
    return { seedUrl: url, cliEnv: { DATABASE_URL: url }, release: async () => {} }
  }
  const dataDir = join(ctx.tmp, "replay")
  const embedded = await startEmbeddedPostgres(join(dataDir, "pg"))
  let isClosed = false
  const { DATABASE_URL: _db, NATS_URL: _nats, ...inherited } = Deno.env.toObject()
  return {
    seedUrl: embedded.url,
    cliEnv: { ...inherited, HAMLET_DATA: dataDir },
    /** The CLI opens the data directory itself: the seeding server lets go of it first. */
    release: async () => {
      if (isClosed) return
      isClosed = true
      await embedded.close()
    },
  }
}

export const runReplay = async (ctx: BenchContext, events: number): Promise<Array<Row>> => {
  const name = `replay --verify, ${events.toLocaleString("en")} events`
  const root = new URL("..", import.meta.url).pathname
  // seeding, rebuild and verify; the embedded store (one WASM thread, and its own start) is slower
  const estimateS = ctx.databases ? 10 + events / 4_000 : 15 + events / 1_500
  if (!fits(ctx, estimateS)) return [{ group: "replay", name, note: "skipped: time budget" }]
  const store = await replayStore(ctx)
  const host = "bench.example.com"
  /** Runs a CLI; `allowFailure` keeps the time of a run that finished with a non-zero exit. */
  const run = async (args: Array<string>, timeoutS: number, allowFailure = false) => {
    const t0 = performance.now()
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...args],
      cwd: root,
      env: { ...store.cliEnv, LOG_LEVEL: "Warn" },
      clearEnv: !ctx.databases,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutS * 1000), // kills this child only
    }).output()
    const seconds = (performance.now() - t0) / 1000
    if (seconds >= timeoutS - 0.5) throw new Error(`timed out after ${timeoutS} s`)
    lastExit = out.code
    if (!out.success && !allowFailure) {
      throw new Error(new TextDecoder().decode(out.stderr).slice(0, 1500) || `exit ${out.code}`)
    }
    return seconds
  }
  let lastExit = 0
  const remainingS = () => Math.max(5, Math.floor((ctx.deadline - Date.now()) / 1000))
  try {
    ctx.log(`replay: seeding ${events} events`)
    const seedArgs = [
      "bench/seed-events.ts",
      "--events",
      String(events),
      "--host",
      host,
      "--database-url",
      store.seedUrl,
    ]
    const seedS = await run(seedArgs, remainingS())
    await store.release()
    // the seeder writes only the log: fill the read tables from it, so verify compares like with like
    ctx.log("replay: rebuilding the read tables from the log")
    const rebuildS = await run(["src/audit/cli.ts", "--host", host, "--rebuild"], remainingS(), true)
    const verifyTimeoutS = Math.min(remainingS(), ctx.quick ? 60 : VERIFY_TIMEOUT_S)
    ctx.log(`replay: verifying (timeout ${verifyTimeoutS} s)`)
    let verifyS: number
    try {
      verifyS = await run(["src/audit/cli.ts", "--host", host, "--verify"], verifyTimeoutS, true)
    } catch (e) {
      const bound = Math.round(events / verifyTimeoutS)
      return [{
        group: "replay",
        name,
        values: { seedEventsPerS: Math.round(events / seedS) },
        note: `verify ${(e as Error).message.split("\n")[0].slice(0, 120)} (< ${bound} events/s); ` +
          `seeded at ${Math.round(events / seedS)} events/s`,
      }]
    }
    return [{
      group: "replay",
      name,
      values: {
        seedEventsPerS: Math.round(events / seedS),
        rebuildEventsPerS: Math.round(events / rebuildS),
        verifyS: Math.round(verifyS * 10) / 10,
        verifyEventsPerS: Math.round(events / verifyS),
        verifyExit: lastExit,
      },
      note: lastExit === 0 ? undefined : "verify found a difference (exit non-zero)",
    }]
  } catch (e) {
    return [{ group: "replay", name, note: `failed: ${(e as Error).message.split("\n")[0]}` }]
  } finally {
    await store.release()
  }
}
