/**
 * HTTP load through `wrk` when it is installed (it costs far less CPU per request than a
 * JS client, so it starves the server less on a small machine). A generated Lua script
 * sets the Host header, mixes the targets by weight and prints the result as JSON; a
 * shell wrapper reports wrk's own CPU time from /proc after it exits.
 */
import type { LoadResult } from "./driver.ts"
import type { LoadSpec } from "./load.ts"

type HttpSpec = Extract<LoadSpec, { kind: "http" }>

/** Whether `wrk` is on PATH. */
export const hasWrk = async (): Promise<boolean> => {
  try {
    const out = await new Deno.Command("sh", { args: ["-c", "command -v wrk"], stdout: "null" }).output()
    return out.success
  } catch {
    return false
  }
}

const luaString = (s: string) => JSON.stringify(s) // JSON string escapes are valid Lua escapes here

const luaScript = (spec: HttpSpec): string => {
  const total = spec.targets.reduce((s, t) => s + t.weight, 0)
  let cumulative = 0
  const targets = spec.targets.map((t) => {
    cumulative += t.weight / total
    return `{ cut = ${cumulative}, method = ${luaString(t.method)}, path = ${luaString(t.path)}, body = ${
      t.body === undefined ? "nil" : luaString(t.body)
    } }`
  })
  return `
local hosts = { ${spec.hosts.map(luaString).join(", ")} }
local targets = { ${targets.join(",\n")} }
local built = {}
local counter = 0
init = function(args)
  math.randomseed(os.time())
  for ti, t in ipairs(targets) do
    built[ti] = {}
    for hi, h in ipairs(hosts) do
      local headers = { Host = h }
      if t.body then headers["Content-Type"] = "application/json" end
      built[ti][hi] = wrk.format(t.method, t.path, headers, t.body)
    end
  end
end
request = function()
  counter = counter + 1
  local r = math.random()
  local ti = #targets
  for i, t in ipairs(targets) do if r <= t.cut then ti = i break end end
  return built[ti][(counter % #hosts) + 1]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"durationUs":%d,"non2xx":%d,"socketErrors":%d,"p50":%f,"p90":%f,"p99":%f,"p999":%f,"mean":%f,"max":%f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
`
}

interface WrkJson {
  requests: number
  durationUs: number
  non2xx: number
  socketErrors: number
  p50: number
  p90: number
  p99: number
  p999: number
  mean: number
  max: number
}

const wrkOnce = async (spec: HttpSpec, script: string, seconds: number) => {
  // the wrapper shell waits for wrk, then its cutime/cstime hold wrk's CPU ticks
  const wrapper = `wrk "$@"; echo "CPU $(getconf CLK_TCK) $(cut -d')' -f2 /proc/$$/stat)"`
  const args = [
    "-c",
    wrapper,
    "sh",
    "-t1",
    `-c${spec.connections}`,
    `-d${seconds}s`,
    "--timeout",
    "10s",
    "-s",
    script,
    `http://127.0.0.1:${spec.port}/`,
  ]
  const out = await new Deno.Command("sh", { args, stdout: "piped", stderr: "piped" }).output()
  const text = new TextDecoder().decode(out.stdout)
  const json = /BENCHJSON (\{.*\})/.exec(text)
  if (!json) throw new Error(`wrk failed: ${text}${new TextDecoder().decode(out.stderr)}`)
  const cpu = /CPU (\d+) (.*)/.exec(text)
  // after "pid (comm)": field 3 is index 0; cutime and cstime are fields 16 and 17
  const fields = cpu ? cpu[2].trim().split(/\s+/) : []
  const ticks = cpu ? Number(fields[13]) + Number(fields[14]) : NaN
  const cpuSeconds = cpu ? ticks / Number(cpu[1]) : NaN
  return { result: JSON.parse(json[1]) as WrkJson, cpuSeconds }
}

/** Runs wrk (one thread) for a warm-up and then the measured window. */
export const runWrk = async (spec: HttpSpec): Promise<LoadResult> => {
  const script = await Deno.makeTempFile({ prefix: "hamlet-bench-", suffix: ".lua" })
  try {
    await Deno.writeTextFile(script, luaScript(spec))
    // wrk counts whole seconds: a sub-second warm-up (--quick) is skipped rather than rounded up
    if (spec.warmupS >= 0.5) await wrkOnce(spec, script, Math.max(1, Math.round(spec.warmupS)))
    const seconds = Math.max(1, Math.round(spec.durationS))
    const { result, cpuSeconds } = await wrkOnce(spec, script, seconds)
    const window = result.durationUs / 1e6
    const ms = (us: number) => Math.round(us) / 1000
    const errors = result.non2xx + result.socketErrors
    return {
      requests: result.requests,
      errors,
      statuses: { "2xx": result.requests - result.non2xx, "non-2xx": result.non2xx },
      durationS: window,
      rps: Math.round(result.requests / window),
      latency: {
        count: result.requests,
        meanMs: ms(result.mean),
        p50Ms: ms(result.p50),
        p90Ms: ms(result.p90),
        p99Ms: ms(result.p99),
        p999Ms: ms(result.p999),
        maxMs: ms(result.max),
      },
      clientCpuPercent: Math.round((cpuSeconds / window) * 100),
      client: "wrk",
    }
  } finally {
    await Deno.remove(script).catch(() => {})
  }
}
