/**
 * The node's dead-letter queue (src/actors/dead-letters.ts) is bounded per host: while the store
 * is slow, one host's flood is cut at 1,000 queued letters (counted as dropped) and another
 * host's letters still find room.
 */
import { Effect, Exit, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { actorCounters } from "../../src/actors/actor-metrics.ts"
import { makeDeadLetters } from "../../src/actors/dead-letters.ts"
import type { Sql } from "../../src/store/database.ts"
import type { DeadLetter } from "../../src/store/dead-letters.ts"

const letter = (host: string, n: number): DeadLetter => ({
  host,
  project: "p",
  subject: `hamlet.req.p.${host.replaceAll(".", "_")}.H`,
  handler: "H",
  requestId: `r${n}`,
  payload: "{}",
  error: { code: "bad_request", message: "bad" },
})

describe("the dead-letter queue", () => {
  it("record() drops one host's letters past its share and keeps room for another host's", async () => {
    // a store that never answers: nothing leaves the queue once the writer holds its first batch
    const stalled = (() => new Promise(() => {})) as unknown as Sql
    const scope = Effect.runSync(Scope.make())
    const deadLetters = await Effect.runPromise(makeDeadLetters(stalled).pipe(Scope.provide(scope)))
    const dropped = () => actorCounters.deadLettersDropped
    const before = dropped()
    for (let i = 0; i < 1_000; i++) deadLetters.record(letter("flood.example.com", i))
    expect(dropped()).toBe(before)
    deadLetters.record(letter("flood.example.com", 1_000))
    expect(dropped()).toBe(before + 1)
    deadLetters.record(letter("quiet.example.com", 0))
    expect(dropped()).toBe(before + 1)
    await Effect.runPromise(Scope.close(scope, Exit.void).pipe(Effect.timeout(10_000), Effect.ignore))
  })
})
