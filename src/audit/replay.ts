/**
 * Replays a host's log through its project's projections into any schema. This is the
 * live projection code (the project's `Projection.apply`, through the buffered writer of
 * store/buffered-writer.ts) pointed at another schema: one definition, two uses. Pages of the log interleave with the
 * writes on the caller's transaction.
 */
import { Effect } from "effect"
import type { LoadedProject } from "../projects/loader.ts"
import { applyProjections } from "../projects/projection.ts"
import { query, type SqlTx } from "../store/database.ts"
import { makeBufferedProjectionWriter } from "../store/buffered-writer.ts"
import { tableName } from "../store/model-ddl.ts"
import type { EventRange } from "./event-range.ts"
import { eventPages } from "./export.ts"

export interface Replayed {
  readonly events: number
  /** Seq of the last event applied (0 for an empty log). */
  readonly lastSeq: number
}

/** Applies the host's events (optionally up to `range.toSeq`) to `schema`'s tables. */
export const replayInto = (
  tx: SqlTx,
  project: LoadedProject,
  host: string,
  schema: string,
  range: Pick<EventRange, "toSeq"> = {},
) =>
  Effect.gen(function* () {
    // tables created in this transaction have no statistics, so the planner would scan them
    // whole for every keyed read and update (quadratic over a replay): force the (host, id) keys
    yield* query(() => tx.unsafe("set local enable_seqscan = off"))
    // rows are buffered in memory and written in multi-row statements: hot rows (a tag's
    // counter) become one write instead of a row version per event in this transaction
    const writer = makeBufferedProjectionWriter(tx, schema, host)
    const pages = eventPages(tx, host, range)
    let events = 0
    let lastSeq = 0
    while (true) {
      const page = yield* query(() => pages.next())
      if (page.done) break
      yield* applyProjections(project.projections, page.value, writer)
      events += page.value.length
      lastSeq = page.value.at(-1)?.seq ?? lastSeq
    }
    yield* writer.flush
    // what follows (the diff, a repair) joins whole tables: give the planner their statistics and
    // its seq scans back, or it walks the primary key once per row (measured: a 1,000,000-row
    // repair 17.5 s with nested loops, 10.6 s with hash joins)
    const tables = project.models.map((model) => tableName(schema, model))
    if (tables.length > 0) yield* query(() => tx.unsafe(`analyze ${tables.join(", ")}`))
    yield* query(() => tx.unsafe("set local enable_seqscan to default"))
    return { events, lastSeq } satisfies Replayed
  }).pipe(Effect.withSpan("audit.replayInto", { attributes: { host, schema } }))
