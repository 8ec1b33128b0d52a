/**
 * The socket postgres.js dials for plain TCP: a Deno TCP socket (platform/tcp-socket.ts) that
 * never rejects. postgres.js leaves a connection whose socket factory rejected in its
 * "connecting" state for good — each refused connect during an outage would take one of the
 * pool's connections, until no query could run even after Postgres is back. So a failed connect
 * (refused, or over `timeoutMs`) becomes what node's net.Socket gives: an `error`, then a `close`.
 * A socket's `close` reaches postgres.js a turn after the socket closed, never inside a chain of
 * promise callbacks: reserved-connection.ts relies on it to learn its connection before a close.
 */
import { EventEmitter } from "node:events"
import { DenoSocket } from "../platform/tcp-socket.ts"

/** A socket whose connect failed: it reports the failure after postgres.js' first write, then closes. */
class FailedSocket extends EventEmitter {
  readyState = "closed" as const
  #isReported = false
  constructor(readonly error: Error) {
    super()
    // postgres.js treats a socket it is handed as connected and writes its startup message at
    // once; reporting after that write leaves none of its state half-done. A socket never
    // written to reports anyway.
    setTimeout(() => this.#report(), 50)
  }
  #report() {
    if (this.#isReported) return
    this.#isReported = true
    if (this.listenerCount("error") > 0) this.emit("error", this.error)
    this.emit("close", true)
  }
  write(_chunk: Uint8Array, callback?: (error?: Error) => void): boolean {
    setTimeout(() => {
      callback?.(this.error)
      this.#report()
    }, 0)
    return false
  }
  end() {}
  destroy() {}
  setKeepAlive() {}
  setNoDelay() {}
}

/** The error of a connect that did not complete in time (postgres.js' own code for it). */
const connectTimedOut = (host: string, port: number, ms: number) =>
  Object.assign(new Error(`connecting to ${host}:${port} took over ${ms} ms`), { code: "CONNECT_TIMEOUT" })

/**
 * Delivers the socket's `close` in a later turn (a macrotask). The read loop sees the end of the
 * stream in a promise callback, possibly in the very turn a reservation of this connection resolved
 * and before the reservation wrote its opening statement; postgres.js would take the connection
 * back in between, and the opening statement would be written to its null socket (a crash in a
 * timer). A turn later, the reservation knows its connection and hears of the close.
 */
const deliverCloseLater = (socket: DenoSocket): DenoSocket => {
  const emit = socket.emit.bind(socket)
  socket.emit = (event: string | symbol, ...args: Array<unknown>): boolean => {
    if (event !== "close") return emit(event, ...args)
    setImmediate(() => emit("close", ...args))
    return true
  }
  return socket
}

/** Dials `host:port`; a failure is a socket reporting it, never a rejection. */
export const dialPostgres = async (
  host: string,
  port: number,
  timeoutMs: number,
): Promise<DenoSocket | FailedSocket> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const dialing = DenoSocket.connect(host, port)
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(connectTimedOut(host, port, timeoutMs)), timeoutMs)
  })
  try {
    return deliverCloseLater(await Promise.race([dialing, timedOut]))
  } catch (error) {
    // a connect that completes after its time is up is closed at once
    dialing.then((late) => late.destroy(), () => {})
    return new FailedSocket(error instanceof Error ? error : new Error(String(error)))
  } finally {
    clearTimeout(timer)
  }
}
