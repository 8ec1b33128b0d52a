/**
 * Reads a request body up to a byte limit without buffering more than the limit, so an
 * oversized upload is refused (413) as soon as it crosses the line; a body must be UTF-8
 * (JSON's encoding: bytes that are not are refused, not replaced), and must keep arriving (a
 * client that declares 50 bytes and sends 4 does not hold its connection). `bodyReadFailure` is
 * how every route answers a body it could not read.
 */
import { decodeText } from "../bus/envelope.ts"
import { replyError } from "../errors.ts"
import { errorResponse } from "./responses.ts"

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`)
  }
}

export class BodyNotUtf8 extends Error {
  constructor() {
    super("the request body is not valid UTF-8")
  }
}

export class BodyTimeout extends Error {
  constructor(readonly ms: number) {
    super(`the request body stopped arriving (nothing for ${ms} ms)`)
  }
}

const decode = (bytes: Uint8Array): string => {
  try {
    return decodeText(bytes)
  } catch {
    throw new BodyNotUtf8()
  }
}

/**
 * The body's bytes, failing with BodyTimeout when `idleMs` pass without a chunk arriving (an
 * idle limit, not a total one: a slow but steady upload is not cut off).
 */
const readBytes = async (
  body: ReadableStream<Uint8Array>,
  limit: number,
  idleMs: number,
): Promise<Uint8Array> => {
  const reader = body.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  // one timer per body, not per chunk: it looks again when the last chunk is idleMs old
  let lastChunkAt = performance.now()
  let onIdle: (error: BodyTimeout) => void = () => {}
  const idle = new Promise<never>((_, reject) => onIdle = reject)
  const watch = () => {
    const left = idleMs - (performance.now() - lastChunkAt)
    if (left <= 0) onIdle(new BodyTimeout(idleMs))
    else timer = setTimeout(watch, left)
  }
  let timer = setTimeout(watch, idleMs)
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), idle])
      lastChunkAt = performance.now()
      if (done) break
      size += value.byteLength
      if (size > limit) throw new BodyTooLarge(limit)
      chunks.push(value)
    }
  } catch (error) {
    await reader.cancel().catch(() => {})
    throw error
  } finally {
    clearTimeout(timer)
  }
  if (chunks.length === 1) return chunks[0]
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}

export const readBodyText = async (request: Request, limit: number, idleMs: number): Promise<string> => {
  const declared = Number(request.headers.get("content-length") ?? NaN)
  if (declared > limit) throw new BodyTooLarge(limit)
  if (!request.body) return ""
  return decode(await readBytes(request.body, limit, idleMs))
}

/**
 * The answer to a body `readBodyText` refused: 413 over the limit, 408 when it stopped arriving,
 * 400 naming the encoding when it is not UTF-8, else 400 (the client went away, say).
 */
export const bodyReadFailure = (error: unknown): Response => {
  if (error instanceof BodyTooLarge) return errorResponse(replyError("bad_request", error.message), 413)
  if (error instanceof BodyTimeout) return errorResponse(replyError("bad_request", error.message), 408)
  if (error instanceof BodyNotUtf8) return errorResponse(replyError("bad_request", error.message))
  return errorResponse(replyError("bad_request", "the request body could not be read"))
}
