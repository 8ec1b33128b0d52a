/**
 * Polling with a deadline, for tests that wait on something asynchronous (no bare sleeps).
 * Uses the live clock: run it under `it.live` or a layer with `excludeTestServices`.
 */
import { Effect } from "effect"

export interface EventuallyOptions {
  readonly timeoutMs?: number
  readonly intervalMs?: number
}

/** Succeeds as soon as `isDone()` holds; fails with an Error naming `what` after the deadline. */
export const eventually = (
  what: string,
  isDone: () => boolean,
  options: EventuallyOptions = {},
): Effect.Effect<void, Error> =>
  Effect.gen(function* () {
    const deadline = Date.now() + (options.timeoutMs ?? 5000)
    while (!isDone()) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(options.intervalMs ?? 5)
    }
  })

/** The same for plain async tests: resolves once `check()` holds, rejects after the deadline. */
export const until = async (
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** A promise's outcome, readable while it is still pending. */
export const watchPromise = <A>(promise: Promise<A>) => {
  const state: { settled?: PromiseSettledResult<A> } = {}
  promise.then(
    (value) => (state.settled = { status: "fulfilled", value }),
    (reason) => (state.settled = { status: "rejected", reason }),
  )
  return state
}
