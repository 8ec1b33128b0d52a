/**
 * Host transactions: a reserved connection, `begin`, the tenant role and `hamlet.host`
 * bound (row-level security as the backstop), the body, then commit — or rollback on any
 * failure or interruption. `begin` with the role binding, the body's writes and COMMIT share one
 * round trip when the body reads nothing (nothing waits for `begin`'s answer). A host transaction is
 * bounded (transaction-bound.ts): past its bound its connection is closed, never reused.
 */
import { Cause, Duration, Effect, Exit } from "effect"
import {
  COMMIT_UNKNOWN,
  DatabaseError,
  IN_FAILED_TRANSACTION,
  isConnectionLost,
  query,
  ROLLED_BACK,
  type Sql,
  type SqlTx,
} from "./database.ts"
import type { Pipeline } from "./pipeline.ts"
import { reserveConnection, type ReservedConnection } from "./reserved-connection.ts"
import { enterHostSql, lockHostSql } from "./roles.ts"
import { storeBackstopSql, transactionBoundMs } from "./transaction-bound.ts"

/** How a write transaction ends (all optional). */
export interface CommitOptions<A, E> {
  /**
   * `commit` is sent right behind the body's pipelined writes instead of after their
   * results: one round trip less. A failed write aborts the transaction (COMMIT then answers
   * ROLLBACK), and the write's own error is what fails the effect.
   */
  readonly pipeline?: Pipeline
  /** Must succeed before `commit` is sent; its failure rolls the transaction back. */
  readonly beforeCommit?: Effect.Effect<void, E>
  /** Called once `commit` is sent, with the body's result, before its answer is known. */
  readonly onCommitSent?: (result: A) => void
  /** Take the host's write lock first (roles.ts `lockHostSql`): the body runs after other nodes' writers. */
  readonly lockHost?: boolean
  /** When the body's work is due (epoch ms; a batch's latest command deadline): sets the bound. */
  readonly deadline?: number
}

/**
 * A host transaction lets its named statements use generic plans (Postgres' default; the pool's
 * connections force custom plans for the partitioned event log, postgres.ts): a command batch's
 * multi-row inserts keep the same text whatever the rows, and planning each of them again was about a
 * quarter of their time in Postgres, the COMMIT's WAL flush aside (bind 0.03–0.22 ms per statement
 * against 0.15–0.6 ms of execution, SubmitItem at 32 clients). An insert's generic plan names only the parent table;
 * partitions are opened as rows reach them. The log's reads stay custom (event-log.ts `readLog`).
 */
const GENERIC_PLANS = process.env.HAMLET_PG_PLAN_CACHE_MODE === undefined
  ? "; set local plan_cache_mode = auto"
  : "" // an operator's choice for the pool (postgres.ts) holds here too

export const withHostTransaction = <A, E>(
  sql: Sql,
  host: string,
  body: (tx: SqlTx) => Effect.Effect<A, E>,
  options: CommitOptions<A, E> = {},
): Effect.Effect<A, E | DatabaseError> =>
  Effect.suspend(() => {
    const boundMs = transactionBoundMs(options.deadline)
    return withTransaction(
      sql,
      `begin; ${enterHostSql(host)}; ${storeBackstopSql(boundMs)}${GENERIC_PLANS}${
        options.lockHost ? `; ${lockHostSql(host)}` : ""
      }`,
      body,
      options,
      boundMs,
    )
  })

/** An owner transaction (no RLS): audit rebuilds, scheduled purges, admin. */
export const withOwnerTransaction = <A, E>(
  sql: Sql,
  body: (tx: SqlTx) => Effect.Effect<A, E>,
): Effect.Effect<A, E | DatabaseError> => withTransaction(sql, "begin", body)

const withTransaction = <A, E>(
  sql: Sql,
  beginSql: string,
  body: (tx: SqlTx) => Effect.Effect<A, E>,
  { pipeline, beforeCommit, onCommitSent }: CommitOptions<A, E> = {},
  boundMs?: number,
): Effect.Effect<A, E | DatabaseError> =>
  withReserved(
    sql,
    beginSql,
    (reserved) => {
      let isCommitSent = false
      const run = Effect.gen(function* () {
        const conn = reserved.sql
        // pipelined: `begin` went out with the reservation, and the body's statements and COMMIT queue
        // right behind it on the same connection, unawaited: a body that reads nothing costs one round
        // trip in all. Its outcome is checked once COMMIT is answered
        const result = yield* body(conn).pipe(
          // a failed pipelined write aborts the transaction, so the body's later reads fail with
          // "current transaction is aborted": report the write's own error (e.g. a (host, seq) race);
          // writes that only met a transaction the body's own failure aborted say nothing new
          (run) =>
            pipeline
              ? Effect.catch(run, (error) =>
                Effect.andThen(
                  pipeline.flush.pipe(
                    Effect.catchIf((e) => e.code === IN_FAILED_TRANSACTION, () => Effect.void),
                  ),
                  Effect.fail(error),
                ))
              : run,
        )
        if (beforeCommit) yield* beforeCommit
        // lost before COMMIT went out (the body may have caught its own failed statement): the
        // server rolled the transaction back, so this is a failure, not an unknown outcome
        if (reserved.isLost()) return yield* Effect.fail(lostConnection())
        const sent = conn.unsafe("commit").execute()
        isCommitSent = true
        sent.catch(() => {}) // observed below, after the pipeline
        onCommitSent?.(result)
        // an aborted transaction answers COMMIT with ROLLBACK and no error: check the tag
        const committed = yield* query(() => sent).pipe(
          Effect.mapError((e) =>
            new DatabaseError({
              message: `commit outcome unknown: ${e.message}`,
              code: COMMIT_UNKNOWN,
              connectionLost: e.connectionLost,
            })
          ),
          Effect.exit,
        )
        // a `begin` the store refused (one of its SETs, the host lock's wait past its bound) aborted the
        // transaction, so COMMIT answered ROLLBACK and the writes behind it "transaction is aborted":
        // its own error says why. A connection lost before it was answered leaves COMMIT's outcome
        // to say what is known
        const opened = yield* Effect.exit(query(() => reserved.opened))
        if (Exit.isFailure(opened) && !wasConnectionLost(opened)) return yield* Effect.failCause(opened.cause)
        if (pipeline) {
          const flushed = yield* Effect.exit(pipeline.flush)
          if (Exit.isFailure(flushed)) {
            // the write's own error is safe to act on (retry) only when the commit surely did
            // not happen: a lost connection, or a write that failed in the client while the
            // commit went through, leaves the outcome unknown
            if (Exit.isSuccess(committed) && committed.value.command === "ROLLBACK") {
              return yield* Effect.failCause(flushed.cause)
            }
            return yield* Effect.fail(
              new DatabaseError({
                message: `commit outcome unknown after a failed pipelined write: ${
                  Exit.isFailure(committed) ? "the commit failed too" : "the commit went through"
                }`,
                code: COMMIT_UNKNOWN,
                connectionLost: wasConnectionLost(committed) || undefined,
              }),
            )
          }
        }
        if (Exit.isFailure(committed)) return yield* Effect.failCause(committed.cause)
        if (committed.value.command !== "COMMIT") {
          return yield* Effect.fail(
            new DatabaseError({ message: "the transaction failed and was rolled back", code: ROLLED_BACK }),
          )
        }
        return result
      })
      return boundMs === undefined ? run : Effect.raceFirst(
        run,
        // the connection is closed first, so nothing in flight on it waits for the store, and the
        // body's interruption cannot hang on it; a COMMIT sent may have landed, anything less did not
        Effect.sleep(Duration.millis(boundMs)).pipe(Effect.andThen(Effect.suspend(() => {
          reserved.terminate()
          return Effect.fail(isCommitSent ? commitUnanswered(boundMs) : unanswered(boundMs))
        }))),
      )
    },
    (exit) => Exit.isSuccess(exit) ? undefined : "rollback",
  )

/**
 * A connection of its own for `use` (a transaction, a snapshot); `finish` (a statement: a
 * rollback) runs before it goes back to the pool, whatever the outcome — also on interruption.
 * A connection lost meanwhile (reserved-connection.ts) takes no more statements, and `finish` is
 * skipped.
 */
export const withReservedConnection = <A, E>(
  sql: Sql,
  use: (conn: SqlTx) => Effect.Effect<A, E>,
  finish: string,
): Effect.Effect<A, E | DatabaseError> => withReserved(sql, "", (reserved) => use(reserved.sql), () => finish)

/**
 * `opening` goes out with the reservation (reserved-connection.ts); `finishing` names the statement
 * that ends the connection's use, if any, for the way `use` ended.
 */
const withReserved = <A, E>(
  sql: Sql,
  opening: string,
  use: (reserved: ReservedConnection) => Effect.Effect<A, E>,
  finishing: (exit: Exit.Exit<A, E | DatabaseError>) => string | undefined,
): Effect.Effect<A, E | DatabaseError> =>
  Effect.acquireUseRelease(
    query(() => reserveConnection(sql, opening)),
    use,
    (reserved, exit) => {
      // lost: postgres.js has taken the connection back, and a statement sent on it (a rollback)
      // would crash the process; releasing it would hand the dead one out again
      if (reserved.isLost() || wasConnectionLost(exit)) return Effect.void
      const statement = finishing(exit)
      // bounded: a finish the store does not answer in time (a COMMIT it never answered, a cut
      // network that has not closed the socket) closes the connection, never handed out again,
      // and a stopping node's batch gets its answer instead of waiting on it for ever
      return statement === undefined
        ? Effect.sync(reserved.release)
        : Effect.promise(() => reserved.finish(statement))
    },
  )

const lostConnection = () =>
  new DatabaseError({
    message: "the connection was lost during the transaction",
    code: "CONNECTION_CLOSED",
    connectionLost: true,
  })

/** The transaction's bound ran out before it reached COMMIT: the store rolls it back (its connection closed). */
const unanswered = (boundMs: number) =>
  new DatabaseError({
    message: `the store did not answer within the transaction's ${boundMs} ms; its connection was closed`,
    code: "CONNECTION_CLOSED",
    connectionLost: true,
  })

/** The bound ran out with COMMIT sent and unanswered: the store may have committed it. */
const commitUnanswered = (boundMs: number) =>
  new DatabaseError({
    message:
      `commit outcome unknown: no answer within the transaction's ${boundMs} ms; its connection was closed`,
    code: COMMIT_UNKNOWN,
    connectionLost: true,
  })

/** Whether `exit` failed because the connection was lost (also as an unknown commit outcome). */
const wasConnectionLost = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isFailure(exit) &&
  exit.cause.reasons.some((reason) => Cause.isFailReason(reason) && isConnectionLost(reason.error))
