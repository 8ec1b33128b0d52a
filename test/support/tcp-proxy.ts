/**
 * A TCP proxy in front of a real service (Postgres), for outage tests: `cut` drops every open
 * connection (a network failure, not a clean shutdown), `refuse` also stops listening, so new
 * connections are refused until `accept` listens again on the same port.
 */
import net from "node:net"
import { freePort } from "./node-process.ts"

export interface TcpProxy {
  readonly port: number
  /** Connections open through the proxy now. */
  readonly openConnections: () => number
  /** Destroys every open connection, both ways. */
  readonly cut: () => void
  /** Cuts, and refuses new connections until `accept`. */
  readonly refuse: () => Promise<void>
  readonly accept: () => Promise<void>
  readonly close: () => Promise<void>
}

export const startTcpProxy = async (targetHost: string, targetPort: number): Promise<TcpProxy> => {
  const port = await freePort()
  const sockets = new Set<net.Socket>()
  const track = (socket: net.Socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
    socket.on("error", () => socket.destroy())
  }
  let server: net.Server | undefined

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const next = net.createServer((client) => {
        const upstream = net.connect(targetPort, targetHost)
        track(client)
        track(upstream)
        client.once("close", () => upstream.destroy())
        upstream.once("close", () => client.destroy())
        client.pipe(upstream)
        upstream.pipe(client)
      })
      next.once("error", reject)
      next.listen(port, "127.0.0.1", () => {
        server = next
        resolve()
      })
    })

  const cut = () => {
    for (const socket of sockets) socket.destroy()
    sockets.clear()
  }
  const refuse = () =>
    new Promise<void>((resolve) => {
      const current = server
      server = undefined
      cut()
      if (!current) return resolve()
      current.close(() => resolve())
    })

  await listen()
  return {
    port,
    openConnections: () => sockets.size / 2,
    cut,
    refuse,
    accept: () => server ? Promise.resolve() : listen(),
    close: refuse,
  }
}
