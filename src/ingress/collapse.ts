/**
 * Request collapsing at the ingress: identical queries (same subject, same input) that reach
 * this ingress in one turn of the event loop go to their host's actor as one bus request, and
 * each caller makes its own response from the shared reply. The request leaves at the end of
 * the turn, after every caller it answers has arrived, so the actor's guarantee holds for each
 * of them: a read runs on statements sent after it arrived, and sees every write committed
 * before. A caller that arrives once the request has left starts the next one.
 *
 * Under load, requests arrive in bursts (the answers to one read batch go out together, and
 * their clients send again together): measured with 32 clients on one host's GetFeed, over 80%
 * of the requests arrived in turns carrying 9 or more, and one bus request then does the work of
 * all of them, on the bus, in the actor and in NATS.
 */

/** Runs `send` once for every caller that asks with the same key before the turn ends. */
export type Collapse = <A>(key: string, send: () => Promise<A>) => Promise<A>

export const makeCollapse = (): Collapse => {
  const open = new Map<string, Promise<unknown>>()
  return <A>(key: string, send: () => Promise<A>): Promise<A> => {
    const joined = open.get(key)
    if (joined) return joined as Promise<A>
    const shared = new Promise<A>((resolve, reject) =>
      setImmediate(() => {
        // closed before it is sent: a caller from now on asks again
        open.delete(key)
        try {
          send().then(resolve, reject)
        } catch (error) {
          reject(error) // a send that throws instead of rejecting must not leave its callers waiting
        }
      })
    )
    open.set(key, shared)
    return shared
  }
}
