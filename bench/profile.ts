/**
 * CPU profiles of a Hamlet node under load, taken through the V8 inspector (the node runs
 * with `--inspect`; Deno has no --cpu-prof flag). A profile is summarised as self time by
 * area (postgres.js, NATS client, Effect, Hamlet's own modules, Deno's runtime, GC, idle)
 * and the top functions, so the run can say where the time goes.
 */

export interface ProfileSummary {
  readonly name: string
  readonly samples: number
  /** Share of non-idle samples, percent, by area. */
  readonly byArea: Record<string, number>
  /** Top self-time functions: percent of non-idle samples. */
  readonly top: ReadonlyArray<{ readonly fn: string; readonly percent: number; readonly via?: string }>
}

interface CpuProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: Array<number>
}

const areaOf = (url: string, fn: string): string => {
  if (fn === "(idle)") return "idle"
  if (fn === "(garbage collector)") return "gc"
  if (fn === "(program)" || url === "") return "native/program"
  if (url.includes("/postgres/")) return "postgres.js"
  if (url.includes("@nats-io")) return "nats.js"
  if (url.includes("/effect/")) return "effect"
  const src = /\/src\/([a-z-]+)\//.exec(url)
  if (src) return `hamlet src/${src[1]}`
  if (url.includes("/projects/")) return "project handlers"
  if (url.startsWith("ext:") || url.startsWith("node:")) return "deno runtime"
  return "other"
}

const short = (url: string) =>
  url.replace(/^.*\/node_modules\/\.deno\//, "npm:").replace(/^file:\/\/\/.*?\/(src|bench|projects)\//, "$1/")

/** Summarises a V8 CPU profile by area and top self-time functions. */
export const summariseProfile = (name: string, profile: { nodes: Array<CpuProfileNode> }): ProfileSummary => {
  const byArea: Record<string, number> = {}
  const byFn = new Map<string, number>()
  // native frames (writeBuffer, GC) say little alone: remember the nearest JS caller
  const parent = new Map<number, CpuProfileNode>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node)
  const jsCaller = (node: CpuProfileNode): string | undefined => {
    for (let p = parent.get(node.id); p; p = parent.get(p.id)) {
      if (p.callFrame.url) {
        return `${p.callFrame.functionName || "(anonymous)"} ${short(p.callFrame.url)}:${
          p.callFrame.lineNumber + 1
        }`
      }
    }
    return undefined
  }
  const callers = new Map<string, Map<string, number>>()
  let busy = 0
  let samples = 0
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0
    if (hits === 0) continue
    samples += hits
    const { functionName, url, lineNumber } = node.callFrame
    const area = areaOf(url, functionName)
    if (area === "idle") continue
    busy += hits
    byArea[area] = (byArea[area] ?? 0) + hits
    const key = `${functionName || "(anonymous)"} ${short(url)}:${lineNumber + 1}`
    byFn.set(key, (byFn.get(key) ?? 0) + hits)
    if (!url) {
      const via = jsCaller(node) ?? "?"
      const counts = callers.get(key) ?? new Map<string, number>()
      counts.set(via, (counts.get(via) ?? 0) + hits)
      callers.set(key, counts)
    }
  }
  const topCaller = (key: string) => {
    const counts = callers.get(key)
    if (!counts) return undefined
    const [via, n] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]
    return `${via} (${pct(n)}%)`
  }
  const pct = (n: number) => Math.round((n / Math.max(1, busy)) * 1000) / 10
  return {
    name,
    samples,
    byArea: Object.fromEntries(
      Object.entries(byArea).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, pct(v)]),
    ),
    top: [...byFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([fn, n]) => ({
      fn,
      percent: pct(n),
      via: topCaller(fn),
    })),
  }
}

/** Connects to the inspector on `port`, profiles while `during` runs, returns the summary. */
export const profileDuring = async (port: number, name: string, during: () => Promise<unknown>) => {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as Array<
    { webSocketDebuggerUrl: string }
  >
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl)
  await new Promise((resolve, reject) => {
    ws.onopen = resolve
    ws.onerror = reject
  })
  let nextId = 1
  const pending = new Map<number, (result: unknown) => void>()
  ws.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown }
    if (message.id !== undefined) pending.get(message.id)?.(message.result)
  }
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++
      pending.set(id, resolve)
      ws.send(JSON.stringify({ id, method, params }))
    })
  try {
    await send("Profiler.enable")
    await send("Profiler.setSamplingInterval", { interval: 200 })
    await send("Profiler.start")
    await during()
    const { profile } = await send("Profiler.stop") as { profile: { nodes: Array<CpuProfileNode> } }
    // BENCH_PROFILE_DIR=<dir> keeps the raw V8 profile (open it in Chrome DevTools)
    const dir = Deno.env.get("BENCH_PROFILE_DIR")
    if (dir) {
      await Deno.writeTextFile(`${dir}/${name.replace(/\W+/g, "-")}.cpuprofile`, JSON.stringify(profile))
    }
    return summariseProfile(name, profile)
  } finally {
    ws.close()
  }
}
