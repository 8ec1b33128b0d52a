/**
 * HTTP with an explicit Host header (fetch forbids setting it), via node:http. Returns a
 * web Response so tests read it the usual way.
 */
import http from "node:http"

export const requestWithHost = (
  port: number,
  host: string,
  path: string,
  init: { method?: string; body?: string | Uint8Array; headers?: Record<string, string> } = {},
): Promise<Response> =>
  new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: init.method ?? (init.body !== undefined ? "POST" : "GET"),
        headers: { host, ...(init.headers ?? {}) },
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const headers = new Headers()
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v)
          }
          const status = res.statusCode ?? 0
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks)
          resolve(new Response(body, { status, headers }))
        })
        res.on("error", reject)
      },
    )
    req.on("error", reject)
    if (init.body !== undefined) req.write(init.body)
    req.end()
  })
