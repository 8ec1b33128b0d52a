/**
 * The last line of defence against a postgres.js connection error that nobody holds. postgres.js
 * sends statements of its own whose promise no caller awaits — the array-type fetch on each new
 * connection — and a connection lost under one (a backend terminated as it starts) rejects that
 * promise unhandled, which ends the isolate and every host on it. Such a rejection only says that
 * a connection closed: postgres.js has taken the connection back, and every statement with a
 * caller got the same error through its own promise. So it is reported and dropped; any other
 * unhandled rejection still ends the isolate. A connect refused or unreachable (pg-socket.ts hands
 * postgres.js a socket reporting it) fails that fetch the same way, with the socket's own error.
 */
import { isConnectionLost } from "./database.ts"
import { isUnreachable } from "./reachability.ts"

/** postgres.js' own connection errors (errors.js `Errors.connection`: `errno` repeats `code`). */
const CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
])

/**
 * Whether `reason` is a postgres.js connection error (not one of Hamlet's, not any other failure),
 * or a failed connect that postgres.js reported on one of its statements (it names the statement).
 */
export const isStrayConnectionError = (reason: unknown): boolean => {
  const error = reason as { code?: unknown; errno?: unknown; query?: unknown } | undefined
  if (!(reason instanceof Error)) return false
  if (CONNECTION_CODES.has(String(error?.code)) && error?.errno === error?.code) return true
  // a socket lost under one of its own statements (ECONNRESET: the store reset the connection as
  // it opened) is the same: the connection is gone, and postgres.js opens another
  return (isUnreachable(reason) || isConnectionLost(reason)) && typeof error?.query === "string"
}

/** Installs the handler on this isolate; `report` hears each rejection dropped. Returns its removal. */
export const dropStrayConnectionErrors = (report: (error: Error) => void): () => void => {
  const listener = (event: PromiseRejectionEvent) => {
    if (!isStrayConnectionError(event.reason)) return
    event.preventDefault()
    report(event.reason as Error)
  }
  globalThis.addEventListener("unhandledrejection", listener)
  return () => globalThis.removeEventListener("unhandledrejection", listener)
}
