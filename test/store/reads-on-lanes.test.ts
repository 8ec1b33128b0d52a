/**
 * A handler's reads on the read lanes carry what is left of its caller's deadline as their
 * time limit, so Postgres cancels a read nobody waits for any more (the lanes' own default
 * applies only to reads given no deadline).
 */
import { Effect } from "effect"
import { expect, it } from "vitest"
import { readsOnLanes } from "../../src/store/model-access.ts"
import type { ReadLanes, ReadOptions } from "../../src/store/read-lanes.ts"

it("readsOnLanes() gives each read what is left of the deadline, in whole seconds, as its time limit", async () => {
  const seen: Array<ReadOptions | undefined> = []
  const lanes: ReadLanes = {
    run: (_host, _text, _params, options) => {
      seen.push(options)
      return Promise.resolve([])
    },
  }
  await Effect.runPromise(readsOnLanes(lanes, "a.example.com", Date.now() + 2_000)("select 1", []))
  await Effect.runPromise(readsOnLanes(lanes, "a.example.com", Date.now() - 50)("select 1", []))
  await Effect.runPromise(readsOnLanes(lanes, "a.example.com")("select 1", []))
  expect(seen[0]).toEqual({ timeoutMs: 2_000 }) // rounded up to a second: reads in a turn share it
  expect(seen[1]).toEqual({ timeoutMs: 1_000 }) // past the deadline: the shortest limit, never none
  expect(seen[2]).toBeUndefined()
})
