/**
 * The host-scoped data API that handlers and projections see. The host is bound by the
 * framework; handler code never passes it, and row-level security backs that up in SQL.
 */
import type { Effect } from "effect"
import type { DatabaseError } from "../store/database.ts"
import type { Model, ModelRow } from "./model.ts"

export type OrderBy<R> = ReadonlyArray<readonly [keyof R & string, "asc" | "desc"]>

export interface ListOptions<R> {
  readonly where?: Partial<R>
  /**
   * Columns to sort by, in turn. Rows equal on every key come in no set order (as in SQL):
   * end with `["id", …]` when a stable order matters, e.g. for paging with `offset`.
   */
  readonly orderBy?: OrderBy<R>
  /** At most this many rows (floored; Infinity is no limit; NaN is a defect: the handler's bug). */
  readonly limit?: number
  /** Rows skipped first (floored; Infinity skips them all; NaN is a defect). */
  readonly offset?: number
  /** Include soft-deleted rows (hidden by default). */
  readonly includeDeleted?: boolean
}

export interface HostReader {
  readonly get: <M extends Model>(
    model: M,
    id: ModelRow<M>["id"],
    options?: { readonly includeDeleted?: boolean },
  ) => Effect.Effect<ModelRow<M> | undefined, DatabaseError>
  readonly list: <M extends Model>(
    model: M,
    options?: ListOptions<ModelRow<M>>,
  ) => Effect.Effect<ReadonlyArray<ModelRow<M>>, DatabaseError>
  readonly count: <M extends Model>(
    model: M,
    where?: Partial<ModelRow<M>>,
  ) => Effect.Effect<number, DatabaseError>
}

export interface ProjectionWriter extends HostReader {
  readonly insert: <M extends Model>(model: M, row: ModelRow<M>) => Effect.Effect<void, DatabaseError>
  /**
   * Insert, or replace every model column of the existing row with the same id: the row is then
   * as written, live again if it was soft-deleted (live and in replays alike).
   */
  readonly upsert: <M extends Model>(model: M, row: ModelRow<M>) => Effect.Effect<void, DatabaseError>
  readonly update: <M extends Model>(
    model: M,
    id: ModelRow<M>["id"],
    patch: Partial<ModelRow<M>>,
  ) => Effect.Effect<void, DatabaseError>
  /** Adds `by` to a numeric column. */
  readonly increment: <M extends Model>(
    model: M,
    id: ModelRow<M>["id"],
    column: keyof ModelRow<M> & string,
    by?: number,
  ) => Effect.Effect<void, DatabaseError>
  /**
   * Adds `by` to `column` of the row with `row.id`, or inserts `row` as given when there is
   * none — one statement, no read: a counter a projection keeps costs no round trip.
   */
  readonly incrementOrInsert: <M extends Model>(
    model: M,
    row: ModelRow<M>,
    column: keyof ModelRow<M> & string,
    by?: number,
  ) => Effect.Effect<void, DatabaseError>
  /** Sets `deleted_at` (models declared with softDelete). */
  readonly softDelete: <M extends Model>(
    model: M,
    id: ModelRow<M>["id"],
    at: Date,
  ) => Effect.Effect<void, DatabaseError>
  readonly remove: <M extends Model>(
    model: M,
    where: Partial<ModelRow<M>>,
  ) => Effect.Effect<void, DatabaseError>
}

/**
 * The writer every projection is run with: a project's projections see it as a `ProjectionWriter`;
 * Hamlet's purge projection (schedule/system-events.ts) also purges. Not part of mod.ts.
 */
export interface SystemProjectionWriter extends ProjectionWriter {
  /**
   * Deletes the rows of `ids` that are still soft-deleted before `deletedBefore` when it runs: a
   * row created again or restored since the cleanup job listed it stays (store/purge-rows.ts).
   */
  readonly purgeSoftDeleted: (
    model: Model,
    ids: ReadonlyArray<string>,
    deletedBefore: Date,
  ) => Effect.Effect<void, DatabaseError>
}
