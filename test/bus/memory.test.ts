/** The Bus contract against the in-process adapter, plus its own options. */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeMemoryBusWith, MemoryBusLive } from "../../src/bus/memory.ts"
import { describeBusContract } from "./contract.ts"

describeBusContract("memory", () => MemoryBusLive, { timeoutMs: 5000 })

it.effect("makeMemoryBusWith() honours a custom maxPayload", () =>
  Effect.gen(function* () {
    const bus = yield* makeMemoryBusWith({ maxPayload: 8 })
    assert.strictEqual(bus.maxPayload, 8)
    yield* bus.publish("small.ok", new Uint8Array(8))
    const error = yield* Effect.flip(bus.publish("small.big", new Uint8Array(9)))
    assert.strictEqual(error._tag, "BusPayloadTooLarge")
  }))

it.effect("publish() returns before subscribers run", () =>
  Effect.gen(function* () {
    const bus = yield* makeMemoryBusWith()
    const received: Array<string> = []
    yield* bus.subscribe("async.check", (message) => received.push(message.subject))
    yield* bus.publish("async.check", new Uint8Array(0))
    assert.deepStrictEqual(received, [])
  }))
