/**
 * `--at <seq|time>`: the read tables of a host as they were at a point of its log, rebuilt
 * from the log up to that seq (for a time: the last event recorded at or before it) into a
 * scratch schema inside a rolled-back snapshot, and handed out row by row.
 */
import { Effect } from "effect"
import type { LoadedProject } from "../projects/loader.ts"
import { query, type Sql, type SqlTx } from "../store/database.ts"
import { withSnapshot } from "./audit-transaction.ts"
import { parseInstant, parseSeq } from "./event-range.ts"
import { type Replayed, replayInto } from "./replay.ts"
import { createScratchSchema } from "./scratch.ts"
import { type TableRow, tableRows } from "./table-rows.ts"

export type LogPoint = { readonly seq: number } | { readonly time: Date }

/** `123` is a seq; anything else must be an ISO-8601 time. Throws BadRange. */
export const parseLogPoint = (text: string): LogPoint =>
  /^\d+$/.test(text) ? { seq: parseSeq("at", text) } : { time: parseInstant("at", text) }

/** The last seq included at `point` (0: before the first event). */
export const resolveLogPoint = (tx: SqlTx, host: string, point: LogPoint) =>
  "seq" in point
    ? Effect.succeed(point.seq)
    : query(() =>
      tx`select coalesce(max(seq), 0)::int8 as seq from hamlet_events
       where host = ${host} and recorded_at <= ${point.time}`
    ).pipe(Effect.map((rows) => Number(rows[0].seq)))

export interface AtReport {
  readonly host: string
  /** The seq the state was rebuilt up to: the last event at or before the point (0: none). */
  readonly seq: number
  /** The seq the point named, or resolved to (past the end of the log, `seq` is where it ends). */
  readonly requestedSeq: number
  readonly replayed: Replayed
}

/** Sink for the rebuilt rows: `table` is `project.table`, rows come in id order. */
export type RowSink = (table: string, rows: ReadonlyArray<TableRow>) => void | Promise<void>

export const stateAt = (sql: Sql, project: LoadedProject, host: string, point: LogPoint, sink: RowSink) =>
  withSnapshot(sql, (tx) =>
    Effect.gen(function* () {
      const seq = yield* resolveLogPoint(tx, host, point)
      const scratch = yield* createScratchSchema(tx, project.models)
      const replayed = yield* replayInto(tx, project, host, scratch, { toSeq: seq })
      yield* dumpTables(tx, project, host, scratch, sink)
      return { host, seq: replayed.lastSeq, requestedSeq: seq, replayed } satisfies AtReport
    }))

/** Hands every model table's rows of `host` in `schema` to `sink` (live: schema = project name). */
export const dumpTables = (tx: SqlTx, project: LoadedProject, host: string, schema: string, sink: RowSink) =>
  query(async () => {
    for (const model of project.models) {
      for await (const rows of tableRows(tx, schema, model, host)) {
        await sink(`${project.name}.${model.table}`, rows)
      }
    }
  })

/** The live read tables of `host` now, in the same shape as `stateAt` (a snapshot to compare). */
export const liveState = (sql: Sql, project: LoadedProject, host: string, sink: RowSink) =>
  withSnapshot(sql, (tx) => dumpTables(tx, project, host, project.name, sink))
