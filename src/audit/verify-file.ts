/**
 * Offline verification of an NDJSON export: the file alone is enough to recompute the
 * chain. Read line by line (constant memory); a line that is not an event is a break.
 * The file does not say which seq it was taken from: given `fromSeq` (1 for a whole-log
 * export) it must start there, else a file starting past seq 1 anchors on its first event,
 * whose content is checked against the `prevHash` it carries (files exported before lines
 * carried it: not checked, as the report says).
 */
import { Effect, Schema } from "effect"
import { type ChainReport, type ChainStart, makeChainVerifier } from "./chain.ts"
import { decodeEventLine, hashedFields } from "./event-line.ts"

export class ExportFileError extends Schema.TaggedError<ExportFileError>()("ExportFileError", {
  path: Schema.String,
  message: Schema.String,
}) {}

export interface FileReport extends ChainReport {
  /** Lines that were not events, with their line number (the chain stops being trusted there). */
  readonly badLines: ReadonlyArray<{ readonly line: number; readonly message: string }>
}

/** Splits a text stream into lines without holding more than one line and one chunk. */
export async function* lines(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  let rest = ""
  for await (const chunk of chunks) {
    const parts = (rest + chunk).split("\n")
    rest = parts.pop() ?? ""
    yield* parts
  }
  if (rest !== "") yield rest
}

/** Verifies the chain of the NDJSON lines in `text` (a stream of decoded text chunks). */
export const verifyLines = async (
  text: AsyncIterable<string>,
  start: Pick<ChainStart, "fromSeq"> = {},
): Promise<FileReport> => {
  const verifier = makeChainVerifier(start)
  const badLines: Array<{ line: number; message: string }> = []
  let number = 0
  for await (const raw of lines(text)) {
    number++
    const line = raw.trim()
    if (line === "") continue
    try {
      const event = decodeEventLine(line)
      verifier.push(hashedFields(event), event.hash, event.prevHash)
    } catch (e) {
      if (badLines.length < 100) badLines.push({ line: number, message: (e as Error).message.split("\n")[0] })
    }
  }
  return { ...verifier.report(), badLines }
}

export const verifyFile = (
  path: string,
  start: Pick<ChainStart, "fromSeq"> = {},
): Effect.Effect<FileReport, ExportFileError> =>
  Effect.tryPromise({
    try: async () => {
      const file = await Deno.open(path, { read: true })
      return await verifyLines(file.readable.pipeThrough(new TextDecoderStream()), start)
    },
    catch: (e) => new ExportFileError({ path, message: (e as Error).message }),
  })

export const isFileIntact = (report: FileReport): boolean =>
  report.breaks.length === 0 && report.badLines.length === 0 && report.events > 0
