/**
 * A Deno-native TCP socket with the small part of net.Socket that postgres.js and the NATS
 * node transport use (data/error/close events, write, end, destroy), in place of Deno's
 * node:net emulation: measured here, a node:net write costs ~25 µs against ~2.5 µs for a
 * Deno.TcpConn write, and the request path writes several times per request. This is the
 * platform seam: the rest of the code never touches Deno sockets.
 */
import { EventEmitter } from "node:events"

/** Initial size of the outgoing buffer (it grows for larger bursts). */
const OUT_BUFFER_BYTES = 16 * 1024
/** How long `end` waits for queued writes before closing the socket anyway. */
const END_TIMEOUT_MS = 1_000

/** A write callback that throws must not skip the others or escape the write loop. */
const notify = (callback: (error?: Error) => void, error?: Error) => {
  try {
    callback(error)
  } catch (thrown) {
    queueMicrotask(() => {
      throw thrown
    })
  }
}

export class DenoSocket extends EventEmitter {
  readyState: "open" | "closed" = "open"
  readonly #conn: Deno.TcpConn
  /** Bytes waiting to be written, in call order: each chunk is copied in once. */
  #pending = new Uint8Array(OUT_BUFFER_BYTES)
  #pendingLength = 0
  /** The buffer of the last completed write, reused for the next burst (two buffers take turns). */
  #spare: Uint8Array<ArrayBuffer> | undefined
  readonly #callbacks: Array<(error?: Error) => void> = []
  #isWriting = false
  /** The write loop in flight (ends when nothing is pending). */
  #writing: Promise<void> = Promise.resolve()

  constructor(conn: Deno.TcpConn) {
    super()
    this.#conn = conn
    conn.setNoDelay(true)
    void this.#readLoop()
  }

  static async connect(hostname: string, port: number): Promise<DenoSocket> {
    return new DenoSocket(await Deno.connect({ hostname, port }))
  }

  async #readLoop() {
    const buffer = new Uint8Array(64 * 1024)
    try {
      for (;;) {
        const n = await this.#conn.read(buffer)
        if (n === null) break
        // postgres.js keeps references to chunks it has not parsed yet: hand it a copy (a native
        // slice, then a Buffer view of it — Buffer.from(Uint8Array) copies element by element)
        this.emit("data", Buffer.from(buffer.slice(0, n).buffer, 0, n))
      }
    } catch (error) {
      this.#fail(error)
    } finally {
      this.#close()
    }
  }

  #fail(error: unknown) {
    // an "error" event without a listener throws: never let it escape into the read loop
    if (this.readyState === "open" && this.listenerCount("error") > 0) this.emit("error", error)
  }

  #close() {
    if (this.readyState === "closed") return
    this.readyState = "closed"
    try {
      this.#conn.close()
    } catch { /* already closed */ }
    this.emit("close")
  }

  write(chunk: Uint8Array, callback?: (error?: Error) => void): boolean {
    if (this.readyState === "closed") {
      queueMicrotask(() => callback?.(new Error("socket closed")))
      return false
    }
    // copied: callers may reuse their buffer once write returns
    const needed = this.#pendingLength + chunk.length
    if (needed > this.#pending.length) {
      const grown = new Uint8Array(Math.max(needed, this.#pending.length * 2))
      grown.set(this.#pending.subarray(0, this.#pendingLength))
      this.#pending = grown
    }
    this.#pending.set(chunk, this.#pendingLength)
    this.#pendingLength = needed
    if (callback) this.#callbacks.push(callback)
    if (!this.#isWriting) {
      // flushed once the current turn of the event loop is done: writes made in the same turn
      // (replies to one batch, requests from one burst) leave in one syscall. Two immediates, not
      // one: postgres.js holds a statement under 1 KiB for an immediate of its own, set after this
      // one when an earlier larger write came first (a batch's inserts, then its small upsert and
      // COMMIT), and a flush in the first would leave those for a second syscall
      this.#isWriting = true
      this.#writing = new Promise((resolve) => setImmediate(() => setImmediate(resolve))).then(() =>
        this.#flushPending()
      )
    }
    return true
  }

  /**
   * Writes everything queued, coalescing what arrived while the previous write was in
   * flight into one buffer: under load, one syscall carries many messages.
   */
  async #flushPending(): Promise<void> {
    try {
      while (this.#pendingLength > 0) {
        const buffer = this.#pending
        const data = buffer.subarray(0, this.#pendingLength)
        this.#pending = this.#spare ?? new Uint8Array(OUT_BUFFER_BYTES)
        this.#spare = undefined
        this.#pendingLength = 0
        const callbacks = this.#callbacks.splice(0)
        try {
          let offset = 0
          while (offset < data.length) offset += await this.#conn.write(data.subarray(offset))
        } catch (error) {
          for (const callback of [...callbacks, ...this.#callbacks.splice(0)]) {
            notify(callback, error as Error)
          }
          this.#pendingLength = 0
          // like node: a failed write errors the socket and closes it, so no reply to a lost
          // request can be matched to a later one
          this.#fail(error)
          this.#close()
          return
        }
        this.#spare = buffer
        for (const callback of callbacks) notify(callback)
      }
    } finally {
      this.#isWriting = false
    }
  }

  end(chunk?: Uint8Array): void {
    if (chunk) this.write(chunk)
    // what is queued gets a moment to go out; a write the peer never takes (a half-open link,
    // its send buffer full) must not keep the socket, and the pool's slot, until TCP gives up
    const timer = setTimeout(() => this.#close(), END_TIMEOUT_MS)
    void this.#writing.finally(() => {
      clearTimeout(timer)
      this.#close()
    })
  }

  destroy(): void {
    this.#close()
  }

  get destroyed(): boolean {
    return this.readyState === "closed"
  }

  setNoDelay(): void {}

  setKeepAlive(enable: boolean): void {
    try {
      this.#conn.setKeepAlive(enable)
    } catch { /* closed */ }
  }

  // flow control is not modelled: reads are consumed as they come (no COPY streams here)
  pause(): void {}
  resume(): void {}
}
