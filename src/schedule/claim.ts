/**
 * Leases on scheduled periods: one row per (job, period) in `hamlet_schedule`. A node claims a
 * period by taking its lease (`lease_until`, in the database's clock, so nodes' clocks never
 * disagree), renews it while the job runs, and marks the period completed when the job is done.
 * A claim whose lease ran out without completion (a failed run, a node stopped) may be taken
 * by any node: a period is done once, at least, across the fleet — jobs are safe to re-run.
 */
import { Duration, Effect } from "effect"
import { type DatabaseError, query, type Sql } from "../store/database.ts"

/** Start of the period that contains `now`, for periods aligned to the epoch. */
export const periodStart = (now: number, everyMs: number): Date =>
  new Date(Math.floor(now / everyMs) * everyMs)

/** What claiming a period gave this node. */
export type Claim =
  /** This node holds the lease; `attempt` counts the claims of the period so far (1 = first). */
  | { readonly _tag: "Won"; readonly attempt: number }
  /** Another node holds a live lease (it may be running the job now). */
  | { readonly _tag: "Held"; readonly by: string; readonly leaseUntil: Date }
  | { readonly _tag: "Completed" }
  /**
   * The period starts after the database's now(): this node's clock runs ahead. Not claimed
   * (its run would use a cutoff in the future); `startsInMs` is how far ahead, by the database.
   */
  | { readonly _tag: "NotStarted"; readonly startsInMs: number }

/** When a lease taken (or renewed) now runs out, in the database's clock. */
const leaseEnd = (sql: Sql, lease: Duration.Duration) =>
  sql`now() + ${Math.max(1, Math.round(Duration.toMillis(lease)))}::float8 * interval '1 millisecond'`

/**
 * Takes the period's lease for `lease`, unless it is completed or another node's lease is live,
 * or the period has not started yet in the database's clock. The row lock of `on conflict do
 * update` makes racing nodes take turns: the second sees the first one's fresh lease and gets
 * nothing. Periods come from the node's clock (scheduler.ts), their leases from the database's:
 * refusing a period the database has not reached keeps a node whose clock runs ahead from
 * running it early — a job's cutoff (its period's start) is never in the database's future.
 */
export const claimPeriod = (
  sql: Sql,
  name: string,
  period: Date,
  nodeId: string,
  lease: Duration.Duration,
): Effect.Effect<Claim, DatabaseError> =>
  Effect.gen(function* () {
    // one statement, one now(): a refused claim's period is surely in the future, never one
    // that began between the insert and a second look (which would find no row: "Completed")
    const [claimed] = yield* query(() =>
      sql`with won as (
            insert into hamlet_schedule as s (name, period_start, claimed_by, claimed_at, lease_until, attempts)
            select ${name}, ${period}::timestamptz, ${nodeId}, now(), ${leaseEnd(sql, lease)}, 1
            where ${period}::timestamptz <= now()
            on conflict (name, period_start) do update
              set claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at,
                  lease_until = excluded.lease_until, attempts = s.attempts + 1
              where s.completed_at is null and s.lease_until <= now()
            returning attempts)
          select (select attempts from won) as attempts,
                 (extract(epoch from ${period}::timestamptz - now()) * 1000)::float8 as starts_in_ms`
    )
    if (claimed.attempts !== null) return { _tag: "Won", attempt: Number(claimed.attempts) } as const
    const startsInMs = Number(claimed.starts_in_ms)
    if (startsInMs > 0) return { _tag: "NotStarted", startsInMs } as const
    const rows = yield* query(() =>
      sql`select claimed_by, lease_until, completed_at from hamlet_schedule
          where name = ${name} and period_start = ${period}`
    )
    const row = rows[0]
    // a missing row was pruned meanwhile: long past, nothing to run
    if (!row || row.completed_at !== null || row.lease_until === null) return { _tag: "Completed" } as const
    return { _tag: "Held", by: String(row.claimed_by), leaseUntil: row.lease_until as Date } as const
  })

/**
 * Extends this node's live lease on a period it is running; false when the lease was lost (run
 * out, or given back: a renewal that reaches the database after the release must not revive it).
 */
export const renewLease = (
  sql: Sql,
  name: string,
  period: Date,
  nodeId: string,
  lease: Duration.Duration,
): Effect.Effect<boolean, DatabaseError> =>
  query(() =>
    sql`update hamlet_schedule set lease_until = ${leaseEnd(sql, lease)}
        where name = ${name} and period_start = ${period} and claimed_by = ${nodeId} and completed_at is null
          and lease_until > now()
        returning 1`
  ).pipe(Effect.map((rows) => rows.length === 1))

/**
 * Marks the period done by this node (also when its lease was taken over meanwhile: the work was
 * done, and the other node's run finds the period completed at its end).
 */
export const completePeriod = (
  sql: Sql,
  name: string,
  period: Date,
  nodeId: string,
): Effect.Effect<void, DatabaseError> =>
  query(() =>
    sql`update hamlet_schedule set completed_at = now(), claimed_by = ${nodeId}, last_error = null
        where name = ${name} and period_start = ${period} and completed_at is null`
  ).pipe(Effect.asVoid)

/**
 * Marks a period done without running it again, saying why in `last_error`: no node takes it up
 * (a retry that could do harm, period-run.ts `RETRY_HORIZON_MS`).
 */
export const abandonPeriod = (
  sql: Sql,
  name: string,
  period: Date,
  nodeId: string,
  reason: string,
): Effect.Effect<void, DatabaseError> =>
  query(() =>
    sql`update hamlet_schedule set completed_at = now(), claimed_by = ${nodeId}, last_error = ${reason}
        where name = ${name} and period_start = ${period} and completed_at is null`
  ).pipe(Effect.asVoid)

/** Gives up this node's lease after a failed or interrupted run, so any node may take the period at once. */
export const releaseLease = (
  sql: Sql,
  name: string,
  period: Date,
  nodeId: string,
  error: string,
): Effect.Effect<void, DatabaseError> =>
  query(() =>
    sql`update hamlet_schedule set lease_until = now(), last_error = ${error.slice(0, 2_000)}
        where name = ${name} and period_start = ${period} and claimed_by = ${nodeId} and completed_at is null`
  ).pipe(Effect.asVoid)

/**
 * Earlier periods of `name` (from `since`, before `before`) that were claimed but never completed
 * and whose lease ran out: the most recent `limit`, newest first.
 */
export const unfinishedPeriods = (
  sql: Sql,
  name: string,
  since: Date,
  before: Date,
  limit: number,
): Effect.Effect<ReadonlyArray<Date>, DatabaseError> =>
  query(() =>
    sql`select period_start from hamlet_schedule
        where name = ${name} and period_start >= ${since} and period_start < ${before}
          and completed_at is null and lease_until <= now()
        order by period_start desc limit ${limit}`
  ).pipe(Effect.map((rows) => rows.map((r) => r.period_start as Date)))

/** Forgets claims of periods before `before` (the table would otherwise grow by one row per tick). */
export const pruneClaims = (sql: Sql, name: string, before: Date): Effect.Effect<void, DatabaseError> =>
  query(() => sql`delete from hamlet_schedule where name = ${name} and period_start < ${before}`).pipe(
    Effect.asVoid,
  )
