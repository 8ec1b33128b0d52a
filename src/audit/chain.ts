/**
 * The hash-chain check over a host's events in seq order, fed one event at a time so it
 * runs in constant memory over any log size. It finds tampering (an event whose content
 * no longer matches its hash) and gaps (deleted events: seq not continuous, or a log that
 * does not start where it must), and keeps checking past a break, re-anchoring on the
 * stored hash, so every break is reported. An event that comes with the hash it links to
 * (`prevHash`, as exports carry it) is checked against it where nothing before it was read.
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
  /**
   * Set when the log read starts past seq 1 and that start was accepted (no `fromSeq`, or
   * `fromSeq` > 1 and the first event is there).
   */
  readonly anchoredAt: number | undefined
  /**
   * With `anchoredAt`: the `prevHash` the first event came with, which its content was checked
   * against — taken on trust, to compare with the live log's hash at seq `anchoredAt` − 1.
   * Undefined when it came without one (a file exported before exports carried it): the first
   * event's content was then not checked, only its own hash taken on trust.
   */
  readonly anchorHash: string | undefined
  readonly breaks: ReadonlyArray<ChainBreak>
  /** Breaks beyond the ones kept (the report stays bounded). */
  readonly moreBreaks: number
}

export const isIntact = (report: ChainReport): boolean => report.breaks.length === 0

/** Whether a partial file's first event could not be checked (a file without prevHash): exit 3. */
export const isFirstUnchecked = (report: ChainReport): boolean =>
  report.anchoredAt !== undefined && report.anchorHash === undefined

const MAX_BREAKS = 100

export interface ChainVerifier {
  /**
   * `event` must hold exactly the hashed fields (see event-line.ts `hashedFields`); `prevHash`
   * is the hash it says it links to, if it says (an export's line).
   */
  readonly push: (event: HashedFields, hash: string, prevHash?: string) => void
  readonly report: () => ChainReport
}

export interface ChainStart {
  /** Events of any other host are `foreign`; by default, the host of the first event. */
  readonly host?: string
  /**
   * The seq the log must start at. 1 for the live log, which always starts at seq 1 on the
   * genesis hash: a first event past it means deleted events, never an anchor. Unset for an
   * export of unknown range: it anchors on its first event, whatever its seq.
   */
  readonly fromSeq?: number
}

const missing = (from: number, to: number) =>
  `${from === to ? `seq ${from} is` : `seq ${from}..${to} are`} missing (deleted events?)`

/**
 * A fresh verifier. From seq 1 the first event links to the genesis hash; a log read from
 * a later seq (a partial export) anchors on its first event.
 */
export const makeChainVerifier = (start: ChainStart = {}): ChainVerifier => {
  let host = start.host
  let events = 0
  let firstSeq: number | undefined
  let lastSeq = 0
  let prevHash = GENESIS_HASH
  let anchoredAt: number | undefined
  let anchorHash: string | undefined
  let isUnanchored = false
  const breaks: Array<ChainBreak> = []
  let moreBreaks = 0
  const broken = (seq: number, kind: ChainBreakKind, message: string) => {
    if (breaks.length < MAX_BREAKS) breaks.push({ seq, kind, message })
    else moreBreaks++
  }
  const tampered = (seq: number, against: string) =>
    broken(seq, "tampered", `seq ${seq}: stored hash does not match the event's content${against}`)
  // nothing read before this event to check its link against: check its content against the
  // link it came with, if any, and continue from its own hash
  const resumeAt = (event: HashedFields, hash: string, link: string | undefined) => {
    if (link !== undefined && eventHash(link, event) !== hash) tampered(event.seq, " and its prevHash")
    lastSeq = event.seq
    prevHash = hash
  }
  return {
    push: (event, hash, link) => {
      events++
      host ??= event.host
      if (event.host !== host) {
        broken(event.seq, "foreign", `seq ${event.seq} belongs to host ${event.host}, not ${host}`)
      }
      if (link !== undefined && anchoredAt !== undefined && anchorHash === undefined && !isUnanchored) {
        // a file whose later lines carry prevHash was not exported before lines had it: its first
        // line's was taken off, so that event's content could not be checked
        isUnanchored = true
        broken(
          anchoredAt,
          "tampered",
          `seq ${anchoredAt} has no prevHash while later lines do: its content cannot be checked`,
        )
      }
      if (firstSeq === undefined) {
        firstSeq = event.seq
        const from = start.fromSeq ?? event.seq
        if (event.seq > from) {
          broken(from, "missing", missing(from, event.seq - 1))
          return resumeAt(event, hash, link)
        }
        if (event.seq < from) {
          broken(event.seq, "unordered", `seq ${event.seq} comes before seq ${from}, where the log starts`)
          return resumeAt(event, hash, link)
        }
        if (event.seq !== 1) {
          anchoredAt = event.seq
          anchorHash = link
          return resumeAt(event, hash, link)
        }
      } else if (event.seq <= lastSeq) {
        broken(event.seq, "unordered", `seq ${event.seq} follows seq ${lastSeq}`)
        return
      } else if (event.seq !== lastSeq + 1) {
        broken(lastSeq + 1, "missing", missing(lastSeq + 1, event.seq - 1))
        return resumeAt(event, hash, link)
      }
      if (link !== undefined && link !== prevHash) {
        const before = event.seq === 1 ? "the genesis hash" : `the hash of seq ${event.seq - 1}`
        broken(event.seq, "tampered", `seq ${event.seq}: its prevHash is not ${before}`)
      } else if (eventHash(prevHash, event) !== hash) tampered(event.seq, "")
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
      anchorHash,
      breaks,
      moreBreaks,
    }),
  }
}
