/**
 * Host transactions: a reserved connection, `begin`, the tenant role and `hamlet.host`
 * bound (row-level security as the backstop), the body, then commit — or rollback on any
 * failure or interruption. Begin and role binding share one round trip.
 */
import { Effect, Exit } from "effect"
import { COMMIT_UNKNOWN, DatabaseError, query, ROLLED_BACK, type Sql, type SqlTx } from "./database.ts"
import { enterHostSql } from "./roles.ts"

export const withHostTransaction = <A, E>(
  sql: Sql,
  host: string,
  body: (tx: SqlTx) => Effect.Effect<A, E>,
): Effect.Effect<A, E | DatabaseError> => withTransaction(sql, `begin; ${enterHostSql(host)}`, body)

/**
 * A read-only host transaction (queries): a query handler cannot write, even by mistake.
 * (Not sending `commit` blind: postgres.js may hand the released connection to the next
 * borrower before a pipelined commit ran — measured: the next transaction inherited it.)
 */
export const withHostReadTransaction = <A, E>(
  sql: Sql,
  host: string,
  body: (tx: SqlTx) => Effect.Effect<A, E>,
): Effect.Effect<A, E | DatabaseError> =>
  // enable_sort off: see READ_SESSION in postgres.ts (order by index even without statistics)
  withTransaction(sql, `begin read only; ${enterHostSql(host)}; set local enable_sort = off`, body)

/**
 * A host-scoped read. On a read pool (tenant role, read-only sessions) it binds the host with
 * one statement pipelined ahead of the body's queries on the same connection — no
 * transaction; otherwise it is a read-only host transaction.
 */
export const withHostRead = <A, E>(
  db: { readonly sql: Sql; readonly readSql?: Sql },
  host: string,
  body: (tx: SqlTx) => Effect.Effect<A, E>,
): Effect.Effect<A, E | DatabaseError> => {
  const readSql = db.readSql
  if (!readSql) return withHostReadTransaction(db.sql, host, body)
  return Effect.acquireUseRelease(
    query(() => readSql.reserve()),
    (conn) => {
      // every borrower binds its host first, so a session's previous host never leaks
      const bound = conn`select set_config('hamlet.host', ${host}, false)`.execute()
      bound.catch(() => {}) // observed below
      return body(conn).pipe(Effect.tap(() => query(() => bound)))
    },
    (conn) => Effect.sync(() => conn.release()),
  )
}

/** An owner transaction (no RLS): audit rebuilds, scheduled purges, admin. */
export const withOwnerTransaction = <A, E>(
  sql: Sql,
  body: (tx: SqlTx) => Effect.Effect<A, E>,
): Effect.Effect<A, E | DatabaseError> => withTransaction(sql, "begin", body)

const withTransaction = <A, E>(
  sql: Sql,
  beginSql: string,
  body: (tx: SqlTx) => Effect.Effect<A, E>,
): Effect.Effect<A, E | DatabaseError> =>
  Effect.acquireUseRelease(
    query(() => sql.reserve()),
    (conn) =>
      Effect.gen(function* () {
        // pipelined: `begin` is sent now and the body's first query queues right behind it
        // on the same connection, saving a round trip; its outcome is checked before commit
        const begun = conn.unsafe(beginSql).simple().execute()
        begun.catch(() => {}) // observed below; never an unhandled rejection when the body fails first
        const result = yield* body(conn).pipe(Effect.tap(() => query(() => begun)))
        // an aborted transaction answers COMMIT with ROLLBACK and no error: check the tag
        const committed = yield* query(() => conn.unsafe("commit")).pipe(
          Effect.mapError((e) =>
            new DatabaseError({ message: `commit outcome unknown: ${e.message}`, code: COMMIT_UNKNOWN })
          ),
        )
        if (committed.command !== "COMMIT") {
          return yield* Effect.fail(
            new DatabaseError({ message: "the transaction failed and was rolled back", code: ROLLED_BACK }),
          )
        }
        return result
      }),
    (conn, exit) =>
      (Exit.isSuccess(exit) ? Effect.void : Effect.ignore(query(() => conn.unsafe("rollback")))).pipe(
        Effect.ensuring(Effect.sync(() => conn.release())),
      ),
  )
