/**
 * The NATS adapter through an outage: a private server is killed and restarted; the bus
 * reports it, fails fast meanwhile, and reconnects by itself (subscriptions included).
 */
import { assert, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { existsSync } from "node:fs"
import { describe } from "vitest"
import { makeNatsBus } from "../../src/bus/nats.ts"
import { eventually } from "../support/eventually.ts"
import { NATS_SERVER_BIN, startNatsServer } from "../support/nats-server.ts"
import { isServiceRequired, uniqueSuffix } from "../support/services.ts"

const hasBinary = existsSync(NATS_SERVER_BIN)
if (!hasBinary && isServiceRequired) throw new Error(`${NATS_SERVER_BIN} is required but missing`)

const bytes = (text: string) => new TextEncoder().encode(text)

describe.skipIf(!hasBinary)("nats outage", () => {
  it.live(
    "the bus fails fast while NATS is down and recovers by itself when it is back",
    () =>
      Effect.gen(function* () {
        const server = yield* startNatsServer
        const bus = yield* makeNatsBus(server.url, { reconnectTimeWaitMs: 50 })
        const isConnected = () => Effect.runSync(bus.isConnected)
        const subject = `test.outage.${uniqueSuffix()}`
        yield* bus.subscribe(`${subject}.echo`, (message) => message.respond(message.data))
        yield* bus.subscribe(`${subject}.silent`, () => {})
        assert.strictEqual(
          new TextDecoder().decode(
            (yield* bus.request(`${subject}.echo`, bytes("hi"), { timeoutMs: 2000 })).data,
          ),
          "hi",
        )

        // An in-flight request does not wait for its timeout when the connection drops.
        const inFlight = yield* Effect.forkChild(
          bus.request(`${subject}.silent`, bytes("?"), { timeoutMs: 10_000 }),
        )
        yield* bus.flush
        const killedAt = Date.now()
        yield* server.kill
        yield* eventually("isConnected to turn false", () => !isConnected(), { timeoutMs: 5000 })
        const inFlightError = yield* Effect.flip(Fiber.join(inFlight))
        assert.strictEqual(inFlightError._tag, "BusUnavailable")
        // it had gone out: its handler may have run
        assert.strictEqual(inFlightError._tag === "BusUnavailable" && inFlightError.sent, true)
        assert.isBelow(Date.now() - killedAt, 2000)

        const started = Date.now()
        const requestError = yield* Effect.flip(
          bus.request(`${subject}.echo`, bytes("?"), { timeoutMs: 5000 }),
        )
        assert.strictEqual(requestError._tag, "BusUnavailable")
        // refused before it went out: nothing ran
        assert.notStrictEqual(requestError._tag === "BusUnavailable" && requestError.sent, true)
        assert.isBelow(Date.now() - started, 1000) // fast: far under the 2 s timeout
        const publishError = yield* Effect.flip(bus.publish(`${subject}.echo`, bytes("?")))
        assert.strictEqual(publishError._tag, "BusUnavailable")

        assert.strictEqual(yield* bus.reconnects, 0)
        yield* server.restart
        yield* eventually("the bus to reconnect", isConnected, { timeoutMs: 10_000 })
        // counted: what was published meanwhile never reached this node (hosts catch up on it)
        assert.strictEqual(yield* bus.reconnects, 1)
        const reply = yield* bus.request(`${subject}.echo`, bytes("again"), { timeoutMs: 2000 })
        assert.strictEqual(new TextDecoder().decode(reply.data), "again")
      }),
    30_000,
  )
})
