/**
 * Reading a host's log in seq order, a batch at a time, in constant memory:
 * - `eventCursor`: one statement through a postgres.js cursor. It holds its connection
 *   until done, so use it where the connection is the caller's own (CLI, a transaction).
 * - `eventPages`: pages (seq windows, or `seq > last … limit n` for a stream or a time window),
 *   each a short statement. Use it on a shared pool (the admin API: a slow client must not pin
 *   a connection) and where writes interleave with reading (rebuild). The log is append-only
 *   and commit-ordered by seq, so paging sees a consistent prefix.
 */
import type { SqlTx } from "../store/database.ts"
import { EVENT_COLUMNS, rowToStoredEvent, type StoredEvent } from "../store/event-log.ts"
import { encodeEventLine } from "./event-line.ts"
import { type EventRange, rangeCondition } from "./event-range.ts"

export const BATCH_SIZE = 1000

export async function* eventCursor(
  tx: SqlTx,
  host: string,
  range: EventRange = {},
  batchSize = BATCH_SIZE,
): AsyncGenerator<ReadonlyArray<StoredEvent>> {
  const rows = tx`select ${tx(EVENT_COLUMNS)} from hamlet_events where ${
    rangeCondition(tx, host, range)
  } order by seq`.cursor(batchSize)
  for await (const batch of rows) yield batch.map(rowToStoredEvent)
}

export async function* eventPages(
  tx: SqlTx,
  host: string,
  range: EventRange = {},
  pageSize = BATCH_SIZE,
): AsyncGenerator<ReadonlyArray<StoredEvent>> {
  if (range.stream === undefined && range.since === undefined && range.until === undefined) {
    // seq is gapless per host: page by seq windows up to the head as it is now. A window's
    // plan reads only the window; `seq >= x order by seq limit n` on a partition without
    // statistics yet (a host just imported) was planned as a sort of the whole rest of the log
    const [{ head }] = await tx`select coalesce(max(seq), 0)::float8 as head from hamlet_events
      where host = ${host}`
    const last = Math.min(head as number, range.toSeq ?? Infinity)
    let from = range.fromSeq ?? 1
    while (from <= last) {
      const rows = await tx`select ${tx(EVENT_COLUMNS)} from hamlet_events where ${
        rangeCondition(tx, host, range, from - 1)
      } and seq < ${from + pageSize} order by seq`
      if (rows.length > 0) {
        yield rows.map(rowToStoredEvent)
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
    const rows = await tx`select ${tx(EVENT_COLUMNS)} from hamlet_events where ${
      rangeCondition(tx, host, range, after)
    } order by seq limit ${pageSize}`
    if (rows.length === 0) return
    const batch = rows.map(rowToStoredEvent)
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
  batches: AsyncGenerator<ReadonlyArray<StoredEvent>>,
  onFailure: (error: unknown, sentThroughSeq: number) => void,
): ReadableStream<Uint8Array> => {
  const encoder = new TextEncoder()
  let sentThroughSeq = 0
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      let next: IteratorResult<ReadonlyArray<StoredEvent>>
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
