/**
 * Intercepting the statements a postgres.js `sql` sends: a postgres.js query is a lazy Promise
 * whose `handler` postgres.js calls to send it (when it is awaited or executed). A guard replaces
 * that handler — to refuse the statement, or watch how it settles — on every statement made
 * through the tagged template, `unsafe` or `file`. This leans on postgres.js internals (3.4.9,
 * pinned in deno.json): reserved-connection.ts, reachability.ts and queued-reservations.ts are its
 * users.
 */

/**
 * A lost connection's error as postgres.js itself reports one (code CONNECTION_CLOSED), for what a
 * guard refuses or gives up on: callers already answer it as a lost connection (retry).
 */
export const connectionClosed = (why: string): Error =>
  Object.assign(new Error(`write CONNECTION_CLOSED: ${why}`), { code: "CONNECTION_CLOSED" })

/** The part of postgres.js' internal connection a guard may read: its close hook and reservation. */
export interface PgConnection {
  onclose: ((error: Error) => void) | null
  reserved: unknown
  /** Destroys the socket: what was in flight fails, and the pool opens the connection afresh. */
  terminate: () => void
}

/** The part of a postgres.js query a guard touches. */
export interface PgQuery {
  handler: (query: PgQuery) => void
  options: { onexecute?: (connection: PgConnection) => boolean }
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

/** What a guard does with a statement about to be sent: `send(query)` sends it as postgres.js would. */
export type StatementGuard = (query: PgQuery, send: (query: PgQuery) => void) => void

const isQuery = (value: unknown): value is PgQuery =>
  value instanceof Promise && typeof (value as Partial<PgQuery>).handler === "function"

/** Puts `guard` in front of `query`'s sending (fragments — identifiers, builders — are not sent). */
export const guardStatement = <A>(value: A, guard: StatementGuard): A => {
  if (!isQuery(value)) return value
  const send = value.handler
  value.handler = (query) => guard(query, send)
  return value
}

/** Calls `settled` once `query` settles, before its caller hears of it. */
export const onSettled = (query: PgQuery, settled: (error: unknown | undefined, isOk: boolean) => void) => {
  const { resolve, reject } = query
  query.resolve = (result) => {
    settled(undefined, true)
    resolve(result)
  }
  query.reject = (error) => {
    settled(error, false)
    reject(error)
  }
}

/**
 * `sql` with `guard` in front of every statement it makes; `members` replace some of its own
 * (reachability.ts puts its own `reserve` there).
 */
export const guardStatements = <S extends object>(
  sql: S,
  guard: StatementGuard,
  members: Readonly<Record<string, unknown>> = {},
): S =>
  new Proxy(sql, {
    apply: (target, self, args) =>
      guardStatement(Reflect.apply(target as (...a: Array<unknown>) => unknown, self, args), guard),
    get: (target, key, receiver) => {
      if (typeof key === "string" && Object.hasOwn(members, key)) return members[key]
      const member = Reflect.get(target, key, receiver)
      if (key !== "unsafe" && key !== "file") return member
      return (...args: Array<unknown>) =>
        guardStatement((member as (...a: Array<unknown>) => unknown)(...args), guard)
    },
  })
