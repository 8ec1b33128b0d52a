/**
 * How audit results read on a terminal: events as a fixed-width table, chain and drift
 * reports as one line per finding (the first broken seq first), so an auditor can read
 * them and a script can grep them. NDJSON output uses event-line.ts instead.
 */
import type { StoredEvent } from "../store/event-log.ts"
import type { ChainReport } from "./chain.ts"
import type { DiffReport } from "./diff.ts"
import type { FileReport } from "./verify-file.ts"

const clip = (text: string, width: number) => text.length > width ? `${text.slice(0, width - 1)}…` : text
const pad = (text: string, width: number) => clip(text, width).padEnd(width)

export const EVENT_TABLE_HEADER = `${pad("seq", 8)} ${pad("recorded at", 24)} ${pad("stream", 24)} ${
  pad("ver", 4)
} ${pad("type", 20)} ${pad("hash", 12)} data`

export const eventTableRow = (e: StoredEvent): string =>
  `${pad(String(e.seq), 8)} ${pad(e.recordedAt.toISOString(), 24)} ${pad(e.stream, 24)} ${
    pad(String(e.version), 4)
  } ${pad(e.type, 20)} ${e.hash.slice(0, 12)} ${clip(JSON.stringify(e.data), 80)}`

// only a file can be partial (the live log is checked from seq 1): say so, it is not the whole log,
// and name what was taken on trust
const partialNote = ({ anchoredAt: seq, anchorHash }: ChainReport): string => {
  if (seq === undefined) return ""
  const trusted = anchorHash !== undefined
    ? `its first event checked against its prevHash ${anchorHash}, taken on trust: compare it with` +
      ` the live log's hash at seq ${seq - 1}`
    : `the file has no prevHash (exported before lines carried it): the content of its first event,` +
      ` seq ${seq}, was NOT checked and its hash is taken on trust (exit 3); export it again to check it`
  return ` (partial: starts at seq ${seq}, not 1 — ${trusted}; or pass --from 1 if the export should be whole)`
}

export const chainLines = (report: ChainReport): Array<string> => {
  const span = report.events === 0
    ? "no events"
    : `${report.events} events, seq ${report.firstSeq}..${report.lastSeq}`
  if (report.breaks.length === 0) {
    return [`chain: ok — ${span}, head ${report.headHash}${partialNote(report)}`]
  }
  return [
    `chain: BROKEN at seq ${report.breaks[0].seq} — ${span}`,
    ...report.breaks.map((b) => `  ${b.kind} at seq ${b.seq}: ${b.message}`),
    ...(report.moreBreaks > 0 ? [`  … and ${report.moreBreaks} more breaks`] : []),
  ]
}

export const fileLines = (report: FileReport): Array<string> => [
  ...(report.events === 0 ? ["file: no events"] : chainLines(report)),
  ...report.badLines.map((b) => `  line ${b.line} is not an event: ${b.message}`),
]

const show = (value: unknown) => value === undefined ? "∅" : clip(JSON.stringify(value), 120)

export const driftLines = (report: DiffReport, verb = "projections"): Array<string> => {
  if (report.drifts.length === 0) return [`${verb}: ok — ${report.tables} tables agree with the log`]
  const rows = new Set(report.drifts.map((d) => `${d.table}/${d.key}`)).size
  return [
    `${verb}: DRIFT — ${report.drifts.length + report.moreDrifts} cells in ${rows}+ rows differ from the log`,
    ...report.drifts.map((d) =>
      `  ${d.table} id=${JSON.stringify(d.key)} ${d.column}: live ${show(d.live)} rebuilt ${show(d.rebuilt)}`
    ),
    ...(report.moreDrifts > 0 ? [`  … and ${report.moreDrifts} more cells`] : []),
  ]
}

/** Rows of one table, as `--at` prints them in table format. */
export const stateLines = (table: string, rows: ReadonlyArray<Readonly<Record<string, unknown>>>) =>
  rows.map((row) => `${table} ${clip(JSON.stringify(row), 200)}`)
