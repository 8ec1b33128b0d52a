/**
 * Reads a request body up to a byte limit without buffering more than the limit, so an
 * oversized upload is refused (413) as soon as it crosses the line.
 */

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`)
  }
}

export const readBodyText = async (request: Request, limit: number): Promise<string> => {
  const declared = Number(request.headers.get("content-length") ?? NaN)
  if (declared > limit) throw new BodyTooLarge(limit)
  if (!request.body) return ""
  // a declared length is what the server reads, no more: one read, no stream machinery
  if (Number.isFinite(declared)) return await request.text()
  const reader = request.body.getReader()
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
  const bytes = chunks.length === 1 ? chunks[0] : new Uint8Array(size)
  if (chunks.length !== 1) {
    let offset = 0
    for (const chunk of chunks) {
      bytes.set(chunk, offset)
      offset += chunk.byteLength
    }
  }
  return new TextDecoder().decode(bytes)
}
