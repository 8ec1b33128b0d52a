/**
 * Claiming a scheduled tick: one row per (job, period) in `hamlet_schedule`; the insert
 * that wins runs the job. Exactly one node per period, across restarts, with no leader.
 */
import { Effect } from "effect"
import { type DatabaseError, query, type Sql } from "../store/database.ts"

/** Start of the period that contains `now`, for periods aligned to the epoch. */
export const periodStart = (now: number, everyMs: number): Date =>
  new Date(Math.floor(now / everyMs) * everyMs)

/** True when this node won the (name, period) tick. */
export const claimTick = (
  sql: Sql,
  name: string,
  period: Date,
  nodeId: string,
): Effect.Effect<boolean, DatabaseError> =>
  query(() =>
    sql`insert into hamlet_schedule (name, period_start, claimed_by) values (${name}, ${period}, ${nodeId})
        on conflict (name, period_start) do nothing returning claimed_by`
  ).pipe(Effect.map((rows) => rows.length === 1))

/** Forgets claims older than `keepMs` (the table would otherwise grow by one row per tick). */
export const pruneClaims = (sql: Sql, before: Date): Effect.Effect<void, DatabaseError> =>
  query(() => sql`delete from hamlet_schedule where period_start < ${before}`).pipe(Effect.asVoid)
