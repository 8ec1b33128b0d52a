/**
 * Reading a host's event log back as an auditor would: the rows as Postgres returns them,
 * and whether their seqs are gapless and their hash chain recomputes.
 */
import type { Sql } from "../../src/store/database.ts"
import { hashedFields } from "../../src/audit/event-line.ts"
import { eventHash, GENESIS_HASH } from "../../src/store/event-hash.ts"
import { rowToStoredEvent } from "../../src/store/event-log.ts"

export interface LogRow {
  readonly host: string
  readonly seq: number
  readonly type: string
  readonly data: Record<string, unknown>
  readonly hash: string
}

export const readLog = async (sql: Sql, host: string): Promise<ReadonlyArray<LogRow>> =>
  (await sql`select * from hamlet_events where host = ${host} order by seq`) as unknown as Array<LogRow>

/** The seqs that break 1..N, and the first seq whose hash does not recompute (or undefined). */
export const verifyLog = async (
  sql: Sql,
  host: string,
): Promise<
  { readonly count: number; readonly isGapless: boolean; readonly brokenAt: number | undefined }
> => {
  const rows = await sql`select * from hamlet_events where host = ${host} order by seq`
  let prev = GENESIS_HASH
  let brokenAt: number | undefined
  for (const r of rows) {
    const expected = eventHash(prev, hashedFields(rowToStoredEvent(r)))
    if (expected !== r.hash && brokenAt === undefined) brokenAt = Number(r.seq)
    prev = r.hash
  }
  const isGapless = rows.every((r, i) => Number(r.seq) === i + 1)
  return { count: rows.length, isGapless, brokenAt }
}
