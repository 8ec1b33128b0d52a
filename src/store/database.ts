/**
 * The Database service: one postgres.js client, whichever Postgres is behind it (a real
 * server via DATABASE_URL, or embedded PGlite over a loopback socket). Everything in
 * store/ talks SQL through this, so both back ends run the same code.
 */
import { Context, Effect, Schema } from "effect"
import type postgres from "postgres"
import { isUnreachable } from "./reachability.ts"

export type Sql = postgres.Sql
/** A transaction handle (or the pool itself for single statements). */
export type SqlTx = postgres.TransactionSql | postgres.Sql

export class DatabaseError extends Schema.TaggedError<DatabaseError>()("DatabaseError", {
  message: Schema.String,
  code: Schema.optional(Schema.String),
  /** The violated constraint, for constraint errors. */
  constraint: Schema.optional(Schema.String),
  /** The connection was lost under the statement (kept when the error is reported as another). */
  connectionLost: Schema.optional(Schema.Boolean),
}) {}

export class Database extends Context.Service<Database, {
  readonly sql: Sql
  readonly kind: "postgres" | "pglite"
  /** Connection string other processes (replay CLI, tests) can use, when there is one. */
  readonly url: string | undefined
}>()("hamlet/Database") {}

/** Wraps a postgres.js call as an Effect failing with DatabaseError. */
export const query = <A>(run: () => Promise<A>): Effect.Effect<A, DatabaseError> =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => toDatabaseError(cause),
  })

export const toDatabaseError = (cause: unknown): DatabaseError => {
  if (cause instanceof DatabaseError) return cause
  const e = cause as { message?: string; code?: string; constraint_name?: string }
  return new DatabaseError({
    message: e?.message ?? String(cause),
    code: e?.code,
    constraint: e?.constraint_name,
    connectionLost: isConnectionLost(cause) || undefined,
  })
}

/** The socket's own errors (a reset, a write to a closed peer, a dead network) reach a statement as they are. */
const SOCKET_LOST = new Set([
  "CONNECT_TIMEOUT",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
])

/**
 * Whether postgres.js lost the connection under a query (CONNECTION_CLOSED, _ENDED, _DESTROYED,
 * CONNECT_TIMEOUT, or one of the socket's `SOCKET_LOST` errors), as its own error or as a
 * DatabaseError made of one. A reserved connection it was lost under must not be used or released
 * again: postgres.js has taken it back, and a query sent on it crashes the process (a write to its
 * null socket in a timer).
 */
export const isConnectionLost = (error: unknown): boolean => {
  if (error instanceof DatabaseError) return error.connectionLost === true
  const code = (error as { code?: unknown })?.code
  return typeof code === "string" && (code.startsWith("CONNECTION_") || SOCKET_LOST.has(code))
}

/** Postgres' "current transaction is aborted, commands ignored until end of transaction block". */
export const IN_FAILED_TRANSACTION = "25P02"

/** Postgres SQLSTATE for unique_violation: the (host, seq) race across nodes, among others. */
export const UNIQUE_VIOLATION = "23505"

/**
 * The commit's outcome is unknown (the connection failed during COMMIT): the writes may
 * have landed, so the commands must not be run again.
 */
export const COMMIT_UNKNOWN = "hamlet_commit_unknown"

/** Postgres answered COMMIT with ROLLBACK: the transaction had failed and nothing was written. */
export const ROLLED_BACK = "hamlet_rolled_back"

/**
 * SQLSTATEs of a server that cannot serve now, whatever was asked: a connection failure (class
 * 08, but not 08P01, a protocol violation: a bug that would fail every retry), a backend
 * terminated or shutting down (57P01–57P03), no connection slot left (53300).
 */
const UNAVAILABLE_STATES = new Set([
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
  "57P01",
  "57P02",
  "57P03",
  "53300",
])
const _isUnavailableState = (code: string | undefined): boolean =>
  code !== undefined && UNAVAILABLE_STATES.has(code)

/**
 * Whether `error` says the store could not be used — no connection to be had, or the one in use
 * lost — rather than that a statement was wrong. Nothing was committed then, except when the
 * commit's outcome is unknown (`COMMIT_UNKNOWN`), which never counts as unavailable.
 */
export const isStoreUnavailable = (error: DatabaseError): boolean =>
  error.code !== COMMIT_UNKNOWN &&
  (isConnectionLost(error) || isUnreachable(error) || _isUnavailableState(error.code))
