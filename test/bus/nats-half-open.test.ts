/**
 * A half-open link to NATS (the socket stays open, nothing gets through — a partition that
 * sends no reset) is noticed by the client's pings: after two unanswered ones the bus
 * reconnects, and requests work again, instead of timing out for minutes.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { describe } from "vitest"
import { makeNatsBus } from "../../src/bus/nats.ts"
import { eventually } from "../support/eventually.ts"
import { checkService, NATS_URL, uniqueSuffix } from "../support/services.ts"
import { startTcpProxy } from "../support/tcp-proxy.ts"

const hasNats = await checkService("nats")
const bytes = (text: string) => new TextEncoder().encode(text)

describe.skipIf(!hasNats)("nats half-open link", () => {
  it.live("the bus notices a stalled connection by its pings and reconnects", () =>
    Effect.gen(function* () {
      const target = new URL(NATS_URL)
      const proxy = yield* Effect.acquireRelease(
        Effect.promise(() => startTcpProxy(target.hostname, Number(target.port || 4222))),
        (p) => Effect.promise(() => p.close()),
      )
      const bus = yield* makeNatsBus(`nats://127.0.0.1:${proxy.port}`, {
        reconnectTimeWaitMs: 50,
        pingIntervalMs: 300,
      })
      const subject = `test.halfopen.${uniqueSuffix()}`
      yield* bus.subscribe(subject, (message) => message.respond(message.data))
      const echo = bus.request(subject, bytes("hi"), { timeoutMs: 1000 })
      assert.strictEqual(new TextDecoder().decode((yield* echo).data), "hi")

      // from the client's next PING on, its bytes go nowhere; the socket stays open
      proxy.stallWhenSent("PING")
      yield* eventually("the link to stall", () => proxy.stalls() === 1, { timeoutMs: 3000 })
      yield* eventually("the bus to reconnect", () => Effect.runSync(bus.reconnects) >= 1, {
        timeoutMs: 5000,
      })
      const again = yield* echo.pipe(Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 50 }))
      assert.strictEqual(new TextDecoder().decode(again.data), "hi")
    }).pipe(Effect.scoped), 20_000)
})
