/**
 * Reads a request body up to a byte limit without buffering more than the limit, so an
 * oversized upload is refused (413) as soon as it crosses the line; a body must be UTF-8
 * (JSON's encoding: bytes that are not are refused, not replaced), and must arrive within a
 * time limit (a client that declares 50 bytes and sends 4 does not hold its connection).
 */

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
    super(`the request body did not arrive within ${ms} ms`)
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

const decode = (bytes: Uint8Array): string => {
  try {
    return utf8.decode(bytes)
  } catch {
    throw new BodyNotUtf8()
  }
}

const readBytes = async (request: Request, limit: number, declared: number): Promise<Uint8Array> => {
  // a declared length is what the server reads, no more: one read, no stream machinery
  if (Number.isFinite(declared)) return await request.bytes()
  const reader = request.body!.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel().catch(() => {})
      throw new BodyTooLarge(limit)
    }
    chunks.push(value)
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

export const readBodyText = async (request: Request, limit: number, timeoutMs: number): Promise<string> => {
  const declared = Number(request.headers.get("content-length") ?? NaN)
  if (declared > limit) throw new BodyTooLarge(limit)
  if (!request.body) return ""
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyTimeout(timeoutMs)), timeoutMs)
  })
  try {
    return decode(await Promise.race([readBytes(request, limit, declared), late]))
  } finally {
    clearTimeout(timer)
  }
}
