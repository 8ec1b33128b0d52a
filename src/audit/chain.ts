/**
 * The hash-chain check over a host's events in seq order, fed one event at a time so it
 * runs in constant memory over any log size. It finds tampering (an event whose content
 * no longer matches its hash) and gaps (deleted events: seq not continuous), and keeps
 * checking past a break, re-anchoring on the stored hash, so every break is reported.
 */
import { eventHash, GENESIS_HASH, type HashedFields } from "../store/event-hash.ts"

export type ChainBreakKind = "tampered" | "missing" | "foreign" | "unordered"

export interface ChainBreak {
  /** The first seq at which the chain does not hold. */
  readonly seq: number
  readonly kind: ChainBreakKind
  readonly message: string
}

export interface ChainReport {
  readonly host: string | undefined
  readonly events: number
  readonly firstSeq: number | undefined
  readonly lastSeq: number | undefined
  /** Hash of the last event read: anchor it elsewhere to detect truncation later. */
  readonly headHash: string
  /** Set when the first event read was not seq 1: its own hash is taken on trust. */
  readonly anchoredAt: number | undefined
  readonly breaks: ReadonlyArray<ChainBreak>
  /** Breaks beyond the ones kept (the report stays bounded). */
  readonly moreBreaks: number
}

export const isIntact = (report: ChainReport): boolean => report.breaks.length === 0

const MAX_BREAKS = 100

export interface ChainVerifier {
  /** `event` must hold exactly the hashed fields (see event-line.ts `hashedFields`). */
  readonly push: (event: HashedFields, hash: string) => void
  readonly report: () => ChainReport
}

/**
 * A fresh verifier. `expectedHost` rejects events of other hosts; a log read from seq 1
 * starts at the genesis hash, a partial one (first seq > 1) anchors on its first event.
 */
export const makeChainVerifier = (expectedHost?: string): ChainVerifier => {
  let host = expectedHost
  let events = 0
  let firstSeq: number | undefined
  let lastSeq = 0
  let prevHash = GENESIS_HASH
  let anchoredAt: number | undefined
  const breaks: Array<ChainBreak> = []
  let moreBreaks = 0
  const broken = (seq: number, kind: ChainBreakKind, message: string) => {
    if (breaks.length < MAX_BREAKS) breaks.push({ seq, kind, message })
    else moreBreaks++
  }
  return {
    push: (event, hash) => {
      events++
      host ??= event.host
      if (event.host !== host) {
        broken(event.seq, "foreign", `seq ${event.seq} belongs to host ${event.host}, not ${host}`)
      }
      if (firstSeq === undefined) {
        firstSeq = event.seq
        if (event.seq !== 1) {
          // nothing before it to check its link against: trust its hash, check the rest
          anchoredAt = event.seq
          lastSeq = event.seq
          prevHash = hash
          return
        }
      } else if (event.seq <= lastSeq) {
        broken(event.seq, "unordered", `seq ${event.seq} follows seq ${lastSeq}`)
        return
      } else if (event.seq !== lastSeq + 1) {
        const gap = event.seq === lastSeq + 2
          ? `seq ${lastSeq + 1} is`
          : `seq ${lastSeq + 1}..${event.seq - 1} are`
        broken(lastSeq + 1, "missing", `${gap} missing (deleted events?)`)
        // the link to the missing event cannot be checked; continue from this event's hash
        lastSeq = event.seq
        prevHash = hash
        return
      }
      const expected = eventHash(prevHash, event)
      if (expected !== hash) {
        broken(event.seq, "tampered", `seq ${event.seq}: stored hash does not match the event's content`)
      }
      lastSeq = event.seq
      prevHash = hash
    },
    report: () => ({
      host,
      events,
      firstSeq,
      lastSeq: firstSeq === undefined ? undefined : lastSeq,
      headHash: prevHash,
      anchoredAt,
      breaks,
      moreBreaks,
    }),
  }
}
