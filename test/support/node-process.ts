/**
 * Hamlet nodes as real processes (`deno run -A src/main.ts`), for fleet and outage tests:
 * started on a free port with the given environment, ready when /healthz answers, killed
 * on close.
 */
import net from "node:net"
import { SERVE_FLAGS } from "../../bench/processes.ts"

export interface HamletNode {
  readonly port: number
  readonly logs: () => string
  /** The process' exit code once it has exited (null while running or when killed by a signal). */
  readonly exitCode: () => number | null
  readonly close: () => Promise<void>
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export const startNode = async (env: Record<string, string>, timeoutMs = 60_000): Promise<HamletNode> => {
  const port = await freePort()
  let output = ""
  // Deno.Command, not node:child_process: its emulation reports a handled SIGTERM's exit as a signal
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...SERVE_FLAGS, "src/main.ts"],
    env: { ...process.env, LOG_LEVEL: "Warn", ...env, PORT: String(port) } as Record<string, string>,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn()
  const decoder = () => new TextDecoderStream()
  for (const stream of [child.stdout, child.stderr]) {
    void stream.pipeThrough(decoder()).pipeTo(new WritableStream({ write: (text) => void (output += text) }))
      .catch(() => {})
  }
  let exitCode: number | null = null
  let hasExited = false
  const exited = child.status.then((status) => {
    hasExited = true
    exitCode = status.signal === null ? status.code : null
  })
  const close = async () => {
    if (hasExited) return
    child.kill("SIGTERM")
    const timer = setTimeout(() => {
      if (!hasExited) child.kill("SIGKILL")
    }, 5_000)
    await exited
    clearTimeout(timer)
  }
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (hasExited) throw new Error(`node exited early (${exitCode}):\n${output}`)
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => {
      void r.body?.cancel()
      return r.ok
    }, () => false)
    if (ok) break
    if (Date.now() > deadline) {
      await close()
      throw new Error(`node did not become healthy in ${timeoutMs} ms:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { port, logs: () => output, exitCode: () => exitCode, close }
}
