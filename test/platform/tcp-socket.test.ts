/**
 * The Deno socket under postgres.js: `end` lets queued bytes go out, but a peer that never takes
 * them (a half-open link, its buffers full) does not keep the socket — and the pool slot it is —
 * until TCP gives up: it closes within a second or so.
 */
import { describe, expect, it } from "vitest"
import { DenoSocket } from "../../src/platform/tcp-socket.ts"

describe("DenoSocket", () => {
  it("end() closes a socket whose peer takes no more bytes, within its bound", async () => {
    // a peer that accepts and never reads
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 })
    const accepted = listener.accept()
    const socket = await DenoSocket.connect("127.0.0.1", (listener.addr as Deno.NetAddr).port)
    const peer = await accepted
    try {
      // far more than both kernels' buffers hold: the write cannot finish
      socket.write(new Uint8Array(64 * 1024 * 1024))
      await new Promise((resolve) => setTimeout(resolve, 200))
      const closed = new Promise<number>((resolve) => {
        const started = performance.now()
        socket.once("close", () => resolve(performance.now() - started))
      })
      socket.end()
      const timeout = new Promise<"still open">((resolve) => setTimeout(() => resolve("still open"), 5_000))
      const outcome = await Promise.race([closed, timeout])
      expect(outcome).not.toBe("still open")
      expect(outcome as number).toBeLessThan(3_000)
    } finally {
      socket.destroy()
      peer.close()
      listener.close()
    }
  })
})
