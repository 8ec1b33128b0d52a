/**
 * A minimal HTTP/1.1 keep-alive client over raw TCP, for load generation only: it can set
 * the Host header (fetch cannot), sends one request at a time per connection, and reads
 * just enough of the response (status, Content-Length or chunked body) to reuse the socket.
 */

const encoder = new TextEncoder()
const CRLF2 = [13, 10, 13, 10]

export interface HttpRequestSpec {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly host: string
  readonly body?: string
}

/** Pre-encodes a request so the hot loop only writes bytes. */
export const encodeRequest = (spec: HttpRequestSpec): Uint8Array => {
  const body = spec.body === undefined ? undefined : encoder.encode(spec.body)
  const head = `${spec.method} ${spec.path} HTTP/1.1\r\nhost: ${spec.host}\r\nconnection: keep-alive\r\n` +
    (body ? `content-type: application/json\r\ncontent-length: ${body.length}\r\n` : "") + "\r\n"
  const headBytes = encoder.encode(head)
  if (!body) return headBytes
  const out = new Uint8Array(headBytes.length + body.length)
  out.set(headBytes)
  out.set(body, headBytes.length)
  return out
}

const indexOfSeq = (buf: Uint8Array, seq: ReadonlyArray<number>, from: number, to: number): number => {
  outer: for (let i = from; i <= to - seq.length; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer
    return i
  }
  return -1
}

const latin1 = new TextDecoder("latin1")

/** One keep-alive connection. `send` resolves with the status code once the body is read. */
export class HttpConnection {
  #buf = new Uint8Array(64 * 1024)
  #len = 0

  private constructor(private readonly conn: Deno.TcpConn) {}

  static async open(port: number, hostname = "127.0.0.1"): Promise<HttpConnection> {
    const conn = await Deno.connect({ hostname, port })
    conn.setNoDelay(true)
    return new HttpConnection(conn)
  }

  async send(request: Uint8Array): Promise<number> {
    let written = 0
    while (written < request.length) written += await this.conn.write(request.subarray(written))
    let headEnd = -1
    while ((headEnd = indexOfSeq(this.#buf, CRLF2, 0, this.#len)) < 0) await this.#fill()
    const head = latin1.decode(this.#buf.subarray(0, headEnd)).toLowerCase()
    const status = Number(head.slice(9, 12))
    let offset = headEnd + 4
    const lengthMatch = /\r\ncontent-length:\s*(\d+)/.exec(head)
    if (lengthMatch) {
      const end = offset + Number(lengthMatch[1])
      while (this.#len < end) await this.#fill()
      this.#consume(end)
    } else if (/\r\ntransfer-encoding:\s*chunked/.test(head)) {
      for (;;) {
        let lineEnd: number
        while ((lineEnd = indexOfSeq(this.#buf, [13, 10], offset, this.#len)) < 0) await this.#fill()
        const size = parseInt(latin1.decode(this.#buf.subarray(offset, lineEnd)), 16)
        const end = lineEnd + 2 + size + 2
        while (this.#len < end) await this.#fill()
        offset = end
        if (size === 0) break
      }
      this.#consume(offset)
    } else {
      this.#consume(offset) // no body (204/304) — anything else would close the socket
    }
    return status
  }

  close(): void {
    try {
      this.conn.close()
    } catch { /* already closed */ }
  }

  async #fill(): Promise<void> {
    if (this.#len === this.#buf.length) {
      const bigger = new Uint8Array(this.#buf.length * 2)
      bigger.set(this.#buf)
      this.#buf = bigger
    }
    const n = await this.conn.read(this.#buf.subarray(this.#len))
    if (n === null) throw new Error("connection closed by server")
    this.#len += n
  }

  #consume(end: number): void {
    this.#buf.copyWithin(0, end, this.#len)
    this.#len -= end
  }
}
