/**
 * The transaction an inspection (verify, `--at`) runs in: owner role, REPEATABLE READ so the
 * log and the live tables are read at one instant while the server keeps writing, and
 * always rolled back, so whatever it built (scratch schemas) disappears with it.
 */
import { Effect } from "effect"
import { type DatabaseError, query, type Sql, type SqlTx } from "../store/database.ts"
import { withReservedConnection } from "../store/transaction.ts"

export const withSnapshot = <A, E>(
  sql: Sql,
  body: (tx: SqlTx) => Effect.Effect<A, E>,
): Effect.Effect<A, E | DatabaseError> =>
  withReservedConnection(
    sql,
    (conn) =>
      query(() => conn.unsafe("begin isolation level repeatable read").simple()).pipe(
        Effect.andThen(body(conn)),
      ),
    "rollback",
  )
