/**
 * Reading a host's log in seq order, a batch at a time, in constant memory:
 * - `eventCursor`: one statement through a postgres.js cursor. It holds its connection
 *   until done, so use it where the connection is the caller's own (CLI, a transaction).
 * - `eventPages`: pages (seq windows, or `seq > last … limit n` for a stream or a time window),
 *   each a short statement. Use it on a shared pool (the admin API: a slow client must not pin
 *   a connection) and where writes interleave with reading (rebuild). The log is append-only
 *   and commit-ordered by seq, so paging sees a consistent prefix.
 * With `links`, both give each event its link (`prevHash`): what an export writes, so its first
 * event verifies too. A replay or a check of the live log from seq 1 has the chain itself.
 */
import type { SqlTx } from "../store/database.ts"
import { GENESIS_HASH } from "../store/event-hash.ts"
import { EVENT_COLUMNS, rowToStoredEvent } from "../store/event-log.ts"
import { encodeEventLine, type LinkedEvent } from "./event-line.ts"
import { type EventRange, rangeCondition } from "./event-range.ts"

export const BATCH_SIZE = 1000

/**
 * The hash each event links to: the row before it in the result when that is seq − 1 (every row
 * of a seq window but its first), else looked up by key (only evaluated then: a window's first
 * row, or a stream's or time window's rows), the genesis hash at seq 1, null where the log has a gap.
 */
const prevHashColumn = (tx: SqlTx, host: string) =>
  tx`case
    when seq = 1 then ${GENESIS_HASH}
    when lag(seq) over (order by seq) = seq - 1 then lag(hash) over (order by seq)
    else (select p.hash from hamlet_events p where p.host = ${host} and p.seq = hamlet_events.seq - 1)
  end as prev_hash`

/** The columns read: the event's, and its link when `links`. */
const selected = (tx: SqlTx, host: string, links: boolean) =>
  links ? tx`${tx(EVENT_COLUMNS)}, ${prevHashColumn(tx, host)}` : tx`${tx(EVENT_COLUMNS)}`

const rowToLinkedEvent = (row: Record<string, unknown>): LinkedEvent => {
  const event = rowToStoredEvent(row)
  return row.prev_hash == null ? event : { ...event, prevHash: String(row.prev_hash) }
}

export interface ReadOptions {
  /** Give each event its `prevHash` (exports). */
  readonly links?: boolean
  readonly batchSize?: number
}

export async function* eventCursor(
  tx: SqlTx,
  host: string,
  range: EventRange = {},
  { links = false, batchSize = BATCH_SIZE }: ReadOptions = {},
): AsyncGenerator<ReadonlyArray<LinkedEvent>> {
  const rows = tx`select ${selected(tx, host, links)} from hamlet_events where ${
    rangeCondition(tx, host, range)
  } order by seq`.cursor(batchSize)
  for await (const batch of rows) yield batch.map(rowToLinkedEvent)
}

export async function* eventPages(
  tx: SqlTx,
  host: string,
  range: EventRange = {},
  { links = false, batchSize: pageSize = BATCH_SIZE }: ReadOptions = {},
): AsyncGenerator<ReadonlyArray<LinkedEvent>> {
  if (range.stream === undefined && range.since === undefined && range.until === undefined) {
    // seq is gapless per host: page by seq windows up to the head as it is now. A window's
    // plan reads only the window; `seq >= x order by seq limit n` on a partition without
    // statistics yet (a host just imported) was planned as a sort of the whole rest of the log
    const [{ head }] = await tx`select coalesce(max(seq), 0)::float8 as head from hamlet_events
      where host = ${host}`
    const last = Math.min(head as number, range.toSeq ?? Infinity)
    let from = range.fromSeq ?? 1
    while (from <= last) {
      const rows = await tx`select ${selected(tx, host, links)} from hamlet_events where ${
        rangeCondition(tx, host, range, from - 1)
      } and seq < ${from + pageSize} order by seq`
      if (rows.length > 0) {
        yield rows.map(rowToLinkedEvent)
        from += pageSize
        continue
      }
      // an empty window is a gap only a tampered log has: go on from the next event there is
      // (a forged seq near 2^53 must not mean 2^43 empty windows)
      const [{ next }] = await tx`select min(seq)::float8 as next from hamlet_events
        where host = ${host} and seq >= ${from}`
      if (next === null) return
      from = next as number
    }
    return
  }
  // one stream, or a time window: keyset pages over what matches
  let after = 0
  while (true) {
    const rows = await tx`select ${selected(tx, host, links)} from hamlet_events where ${
      rangeCondition(tx, host, range, after)
    } order by seq limit ${pageSize}`
    if (rows.length === 0) return
    const batch = rows.map(rowToLinkedEvent)
    yield batch
    if (rows.length < pageSize) return
    after = batch[batch.length - 1].seq
  }
}

/**
 * Asks for the next batch before the caller works on the current one, so Postgres produces
 * batch k+1 while JS hashes batch k. At most two batches are held: memory stays constant.
 */
export async function* readAhead<A>(source: AsyncGenerator<A>): AsyncGenerator<A> {
  let next = source.next()
  try {
    while (true) {
      const current = await next
      if (current.done) return
      next = source.next()
      yield current.value
    }
  } finally {
    await source.return(undefined)
  }
}

/**
 * An NDJSON body over `batches`, pulled as the client reads (backpressure); cancelling
 * the response closes the reader. A batch that fails to load (the store lost mid-export)
 * errors the stream, so the transfer ends without its last chunk — a client sees an incomplete
 * body (curl: exit 18), never a clean end — and `onFailure` learns the last seq sent (0: none).
 */
export const ndjsonBody = (
  batches: AsyncGenerator<ReadonlyArray<LinkedEvent>>,
  onFailure: (error: unknown, sentThroughSeq: number) => void,
): ReadableStream<Uint8Array> => {
  const encoder = new TextEncoder()
  let sentThroughSeq = 0
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      let next: IteratorResult<ReadonlyArray<LinkedEvent>>
      try {
        next = await batches.next()
      } catch (error) {
        onFailure(error, sentThroughSeq)
        return controller.error(error)
      }
      if (next.done) return controller.close()
      if (next.value.length > 0) sentThroughSeq = next.value[next.value.length - 1].seq
      controller.enqueue(encoder.encode(next.value.map(encodeEventLine).join("")))
    },
    cancel: async () => {
      await batches.return(undefined)
    },
  }, { highWaterMark: 1 })
}
