/**
 * How long a host transaction may hold its connection, and the store's own backstop for it. A
 * statement that never reaches the store while the connection stays open (a half-open network)
 * is never answered and never fails: without a bound the transaction waits for ever, its host's
 * later batches queue behind it, and the store keeps it "idle in transaction", its locks held
 * against every other node writing the host.
 *
 * The bound follows the work, not a guess: a batch's handlers are done by its commands' latest
 * deadline (handler-run.ts clips each to it; command-batch.ts skips expired commands), so by then
 * plus `MARGIN_MS` for the store's part (reads, the COMMIT, a lock wait on another node's
 * equally bounded writer) every caller has given up, and the connection is closed instead. A
 * transaction without a deadline (a scheduled append) gets `UNDEADLINED_MS`, generous: it only
 * has to end, not be prompt.
 */

/** The store's part of a batch after its handlers: far above a normal commit (milliseconds). */
const MARGIN_MS = 5_000

/** The bound of a host transaction with no deadline of its own. */
const UNDEADLINED_MS = 60_000

/**
 * The store's backstop waits this much longer than the node's bound, so the node (which can tell
 * its caller what happened) acts first, and the store only when the node cannot (its FIN lost
 * with the network, the node frozen).
 */
const BACKSTOP_MS = 2_000

/** How long a host transaction may run, from its start (`now`) to its COMMIT's answer. */
export const transactionBoundMs = (deadline: number | undefined, now = Date.now()): number =>
  deadline === undefined ? UNDEADLINED_MS : Math.max(0, deadline - now) + MARGIN_MS

/**
 * Statements for the transaction's `begin` (sent in its round trip, so they cost no wait): the
 * store rolls the transaction back and closes its session itself when it sits idle, or a
 * statement runs, past the bound — frees the host's locks for other nodes even if this node never
 * learns that its connection is dead. Both settings end with the transaction (`set local`).
 */
export const storeBackstopSql = (boundMs: number): string => {
  const ms = Math.ceil(boundMs + BACKSTOP_MS)
  return `set local idle_in_transaction_session_timeout = ${ms}; set local statement_timeout = ${ms}`
}
