/**
 * Hamlet nodes as real processes (`deno run -A src/main.ts`), for fleet and outage tests:
 * started on a free port with the given environment, ready when /healthz answers, killed
 * on close.
 */
import { type ChildProcess, spawn } from "node:child_process"
import net from "node:net"

export interface HamletNode {
  readonly port: number
  readonly logs: () => string
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
  const child: ChildProcess = spawn(Deno.execPath(), ["run", "-A", "src/main.ts"], {
    env: { ...process.env, LOG_LEVEL: "Warn", ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  })
  child.stdout?.on("data", (d) => output += String(d))
  child.stderr?.on("data", (d) => output += String(d))
  const close = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once("exit", () => resolve())
      child.kill("SIGTERM")
      setTimeout(() => child.kill("SIGKILL"), 5_000).unref?.()
    })
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node exited early (${child.exitCode}):\n${output}`)
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)
    if (ok) break
    if (Date.now() > deadline) {
      await close()
      throw new Error(`node did not become healthy in ${timeoutMs} ms:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { port, logs: () => output, close }
}
