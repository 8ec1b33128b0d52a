/**
 * The load generator, run as its own process so it never shares an event loop with the
 * server under test: `deno run -A bench/load.ts '<LoadSpec JSON>'` prints one LoadResult
 * JSON line. `runLoadProcess` is the parent's side (spawn, wait, parse); it uses `wrk` for
 * HTTP when installed and this Deno client otherwise.
 */
import { natsHopDriver, pgAppendDriver } from "./baselines.ts"
import { type Caller, type Driver, type LoadOptions, type LoadResult, runClosedLoop } from "./driver.ts"
import { encodeRequest, HttpConnection } from "./http-client.ts"
import { runWrk } from "./wrk.ts"

/** One kind of HTTP request in a mix; `weight` is its share (weights need not sum to 1). */
export interface HttpTarget {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly body?: string
  readonly weight: number
}

export type LoadSpec =
  & LoadOptions
  & (
    | {
      readonly kind: "http"
      readonly port: number
      readonly hosts: ReadonlyArray<string>
      readonly targets: ReadonlyArray<HttpTarget>
    }
    | { readonly kind: "nats"; readonly url: string; readonly subject: string }
    | {
      readonly kind: "pg"
      readonly url: string
      readonly table: string
      /** 1 for the embedded store: PGlite is one session, as the node's own pool is. */
      readonly maxConnections?: number
    }
  )

type HttpSpec = Extract<LoadSpec, { kind: "http" }>

/**
 * Keep-alive connections going round the hosts together, as wrk's script does: connection i
 * starts on host i and steps by the number of connections, so one pass meets each host once.
 */
const httpDriver = (spec: HttpSpec): Driver => {
  const total = spec.targets.reduce((s, t) => s + t.weight, 0)
  const encoded = spec.targets.map((t) => ({
    weight: t.weight / total,
    byHost: spec.hosts.map((host) => encodeRequest({ method: t.method, path: t.path, host, body: t.body })),
  }))
  const pick = (hostIndex: number): Uint8Array => {
    let r = Math.random()
    for (const t of encoded) {
      if ((r -= t.weight) <= 0) return t.byHost[hostIndex]
    }
    return encoded[encoded.length - 1].byHost[hostIndex]
  }
  return {
    connect: async (index): Promise<Caller> => {
      const conn = await HttpConnection.open(spec.port)
      let hostIndex = index % spec.hosts.length
      return {
        call: () => {
          hostIndex = (hostIndex + spec.connections) % spec.hosts.length
          return conn.send(pick(hostIndex))
        },
        close: () => conn.close(),
      }
    },
    close: () => Promise.resolve(),
  }
}

const driverFor = (spec: LoadSpec): Promise<Driver> | Driver => {
  switch (spec.kind) {
    case "http":
      return httpDriver(spec)
    case "nats":
      return natsHopDriver(spec.url, spec.subject)
    case "pg":
      return pgAppendDriver(spec.url, spec.table, spec.maxConnections)
  }
}

export type HttpClient = "wrk" | "deno"

/** Spawns the load generator for `spec` and returns its result (wrk for HTTP if chosen). */
export const runLoadProcess = async (spec: LoadSpec, client: HttpClient = "deno"): Promise<LoadResult> => {
  if (spec.kind === "http" && client === "wrk") return await runWrk(spec)
  // the spec goes over stdin: 10,000 hosts do not fit in an argument list (E2BIG)
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./load.ts", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn()
  const writer = child.stdin.getWriter()
  await writer.write(new TextEncoder().encode(JSON.stringify(spec)))
  await writer.close()
  const output = await child.output()
  const text = new TextDecoder().decode(output.stdout).trim()
  if (!output.success) {
    throw new Error(`load generator failed: ${new TextDecoder().decode(output.stderr).slice(0, 2000)}`)
  }
  return JSON.parse(text.split("\n").at(-1)!) as LoadResult
}

if (import.meta.main) {
  const spec = JSON.parse(await new Response(Deno.stdin.readable).text()) as LoadSpec
  const result = await runClosedLoop(await driverFor(spec), spec)
  console.log(JSON.stringify(result))
  Deno.exit(0)
}
