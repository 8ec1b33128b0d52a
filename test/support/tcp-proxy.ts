/**
 * A TCP proxy in front of a real service (Postgres), for outage tests: `cut` drops every open
 * connection (a network failure, not a clean shutdown), `refuse` also stops listening, so new
 * connections are refused until `accept` listens again on the same port, and `dropWhenSent`
 * drops one connection at the moment its client sends a given text (which the server never sees);
 * `stallWhenSent` keeps that connection open but never forwards the text, nor anything after it.
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
  /**
   * Once: drops the first connection whose client sends `marker` — after `after`, when given
   * (in the same chunk or an earlier one) — before the chunk carrying it reaches the server.
   */
  readonly dropWhenSent: (marker: string, after?: string) => void
  /** Connections dropped by `dropWhenSent` so far. */
  readonly drops: () => number
  /** Like `dropWhenSent`, but the connection stays open and its client's bytes go nowhere from then on. */
  readonly stallWhenSent: (marker: string, after?: string) => void
  /** Connections stalled by `stallWhenSent` so far. */
  readonly stalls: () => number
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
  let drop:
    | {
      readonly marker: string
      readonly after?: string
      readonly sentAfter: Set<net.Socket>
      readonly isStall: boolean
    }
    | undefined
  let drops = 0
  const stalled = new Set<net.Socket>()

  /** Whether `chunk` from `client` is where the armed drop happens (it then is not forwarded). */
  const isDropped = (client: net.Socket, chunk: Buffer): boolean => {
    if (!drop) return false
    const { marker, after, sentAfter } = drop
    const from = after === undefined || sentAfter.has(client) ? 0 : chunk.indexOf(after)
    if (from >= 0 && chunk.indexOf(marker, from) >= 0) {
      if (drop.isStall) stalled.add(client)
      else drops++
      drop = undefined
      return true
    }
    if (after !== undefined && from >= 0) sentAfter.add(client)
    return false
  }

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const next = net.createServer((client) => {
        const upstream = net.connect(targetPort, targetHost)
        track(client)
        track(upstream)
        client.once("close", () => upstream.destroy())
        upstream.once("close", () => client.destroy())
        upstream.pipe(client)
        client.on("data", (chunk: Buffer) => {
          if (stalled.has(client)) return
          if (isDropped(client, chunk)) {
            if (stalled.has(client)) return
            client.destroy()
            upstream.destroy()
          } else if (!upstream.write(chunk)) {
            client.pause()
            upstream.once("drain", () => client.resume())
          }
        })
        client.once("end", () => upstream.end())
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
    dropWhenSent: (marker, after) => void (drop = { marker, after, sentAfter: new Set(), isStall: false }),
    drops: () => drops,
    stallWhenSent: (marker, after) => void (drop = { marker, after, sentAfter: new Set(), isStall: true }),
    stalls: () => stalled.size,
    close: refuse,
  }
}
