/** Whether something accepts TCP connections at a URL's host and port (readiness probes). */
import net from "node:net"

export const isAccepting = (url: string, defaultPort: number, timeoutMs = 1000): Promise<boolean> =>
  new Promise((resolve) => {
    const u = new URL(url)
    const socket = net.connect({ host: u.hostname, port: Number(u.port || defaultPort) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })
