/**
 * The Bus contract, run against every adapter (memory.test.ts, nats.test.ts): NATS subject
 * semantics, queue groups, request/reply, limits, ordering and scoped unsubscribe.
 */
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer } from "effect"
import { Bus, type BusMessage } from "../../src/bus/bus.ts"
import { eventually } from "../support/eventually.ts"
import { uniqueSuffix } from "../support/services.ts"

export interface BusContractOptions {
  /** Per-test timeout in ms (a real server is slower than memory). */
  readonly timeoutMs?: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (text: string): Uint8Array => encoder.encode(text)
const text = (data: Uint8Array): string => decoder.decode(data)

/** A subject prefix no other test (or concurrent run on a shared server) uses. */
const _prefix = (): string => `test.bus.${uniqueSuffix()}`

/** Subscribes and collects into an array; the subscription lives in the test's scope. */
const _collect = (subject: string, queue?: string) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const received: Array<BusMessage> = []
    yield* bus.subscribe(subject, (message) => received.push(message), queue ? { queue } : undefined)
    return received
  })

export const describeBusContract = <E>(
  name: string,
  makeBus: () => Layer.Layer<Bus, E>,
  options: BusContractOptions = {},
): void =>
  layer(makeBus(), { excludeTestServices: true })(`Bus contract: ${name}`, (it) => {
    const timeout = options.timeoutMs ?? 15_000

    it.effect("subscribe() on a literal subject receives only that subject, with headers", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const p = _prefix()
        const received = yield* _collect(`${p}.a`)
        assert.isTrue(yield* bus.isConnected)
        yield* bus.publish(`${p}.a.b`, bytes("deeper"))
        yield* bus.publish(`${p}.ab`, bytes("other"))
        yield* bus.publish(p, bytes("shallower"))
        yield* bus.publish(`${p}.a`, bytes("hit"), { "X-Trace": "t1", lower: "v" })
        yield* eventually("the literal message", () =>
          received.length >= 1)
        assert.strictEqual(received.length, 1)
        assert.strictEqual(received[0].subject, `${p}.a`)
        assert.strictEqual(text(received[0].data), "hit")
        assert.deepStrictEqual({ ...received[0].headers }, { "X-Trace": "t1", lower: "v" })
        assert.isUndefined(received[0].reply)
      }), timeout)

    it.effect("`*` matches exactly one token", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const p = _prefix()
        const received = yield* _collect(`${p}.*.end`)
        for (const subject of [`${p}.end`, `${p}.x.y.end`, `${p}.x.other`, `${p}.one.end`, `${p}.two.end`]) {
          yield* bus.publish(subject, bytes(subject))
        }
        yield* eventually("two matches", () =>
          received.length >= 2)
        yield* bus.flush
        assert.deepStrictEqual(
          received.map((m) =>
            m.subject
          ),
          [`${p}.one.end`, `${p}.two.end`],
        )
      }), timeout)

    it.effect("`>` matches one or more trailing tokens", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const p = _prefix()
        const received = yield* _collect(`${p}.a.>`)
        for (const subject of [`${p}.a`, `${p}.b.c`, `${p}.a.b`, `${p}.a.b.c.d`]) {
          yield* bus.publish(subject, bytes(subject))
        }
        yield* eventually("two matches", () => received.length >= 2)
        assert.deepStrictEqual(received.map((m) => m.subject), [`${p}.a.b`, `${p}.a.b.c.d`])
      }), timeout)

    it.effect("a queue group gets each message exactly once; plain subscribers get all", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const p = _prefix()
        const n = 200
        const first = yield* _collect(`${p}.work`, "workers")
        const second = yield* _collect(`${p}.*`, "workers")
        const plain = yield* _collect(`${p}.work`)
        const sentinel = yield* _collect(`${p}.done`)
        for (let i = 0; i < n; i++) {
          yield* bus.publish(`${p}.work`, bytes(String(i)))
        }
        yield* bus.publish(`${p}.done`, bytes("done"))
        yield* eventually("all deliveries", () =>
          plain.length === n && sentinel.length === 1)
        // `second` also matches `.done`; count only the work items.
        const secondWork = second.filter((m) => m.subject === `${p}.work`)
        yield* eventually("queue deliveries", () => first.length + secondWork.length >= n)
        const seen = [...first, ...secondWork].map((m) => Number(text(m.data))).sort((a, b) => a - b)
        assert.deepStrictEqual(seen, Array.from({ length: n }, (_, i) => i))
        assert.isAbove(first.length, 0)
        assert.isAbove(secondWork.length, 0)
      }), timeout)

    it.effect("request() round-trips data and headers both ways", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const subject = `${_prefix()}.echo`
        yield* bus.subscribe(subject, (message) =>
          message.respond(bytes(text(message.data).toUpperCase()), {
            "X-Echo": message.headers["X-Id"] ?? "missing",
          }))
        const reply = yield* bus.request(subject, bytes("ping"), {
          timeoutMs: 5000,
          headers: { "X-Id": "42" },
        })
        assert.strictEqual(text(reply.data), "PING")
        assert.strictEqual(reply.headers["X-Echo"], "42")
      }), timeout)

    it.effect("request() goes to one member of a queue group", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const subject = `${_prefix()}.svc`
        let calls = 0
        for (const id of ["a", "b"]) {
          yield* bus.subscribe(subject, (message) => {
            calls++
            message.respond(bytes(id))
          }, { queue: "svc" })
        }
        for (let i = 0; i < 20; i++) {
          const reply = yield* bus.request(subject, bytes("?"), { timeoutMs: 5000 })
          assert.oneOf(text(reply.data), ["a", "b"])
        }
        assert.strictEqual(calls, 20)
      }), timeout)

    it.effect("request() fails with BusTimeout when the responder stays silent", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const subject = `${_prefix()}.silent`
        yield* bus.subscribe(subject, () => {})
        const started = Date.now()
        const error = yield* Effect.flip(bus.request(subject, bytes("?"), { timeoutMs: 150 }))
        assert.strictEqual(error._tag, "BusTimeout")
        assert.isAtLeast(Date.now() - started, 140)
      }), timeout)

    it.effect("request() fails fast with BusNoResponders when nobody listens", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const subject = `${_prefix()}.nobody`
        const started = Date.now()
        const error = yield* Effect.flip(bus.request(subject, bytes("?"), { timeoutMs: 3000 }))
        assert.strictEqual(error._tag, "BusNoResponders")
        assert.isBelow(Date.now() - started, 1000)
      }), timeout)

    it.effect("publish() and request() refuse payloads over maxPayload", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const p = _prefix()
        const received = yield* _collect(`${p}.big`)
        const tooBig = new Uint8Array(bus.maxPayload + 1)
        const published = yield* Effect.flip(bus.publish(`${p}.big`, tooBig))
        assert.strictEqual(published._tag, "BusPayloadTooLarge")
        const requested = yield* Effect.flip(bus.request(`${p}.big`, tooBig, { timeoutMs: 1000 }))
        assert.strictEqual(requested._tag, "BusPayloadTooLarge")
        yield* bus.publish(`${p}.big`, new Uint8Array(64 * 1024).fill(7))
        yield* eventually("the 64 KiB message", () =>
          received.length === 1)
        assert.strictEqual(received[0].data.length, 64 * 1024)
        assert.strictEqual(received[0].data[64 * 1024 - 1], 7)
      }), timeout)

    it.effect("messages from one publisher arrive in publish order", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const p = _prefix()
        const literal = yield* _collect(`${p}.seq`)
        const wild = yield* _collect(`${p}.>`)
        for (let i = 0; i < 1000; i++) {
          yield* bus.publish(`${p}.seq`, bytes(String(i)))
        }
        yield* eventually("1000 messages twice", () =>
          literal.length === 1000 && wild.length === 1000)
        const expected = Array.from({ length: 1000 }, (_, i) => String(i))
        assert.deepStrictEqual(literal.map((m) => text(m.data)), expected)
        assert.deepStrictEqual(wild.map((m) => text(m.data)), expected)
      }), timeout)

    it.effect("closing the scope unsubscribes: nothing is delivered afterwards", () =>
      Effect.gen(function* () {
        const bus = yield* Bus
        const p = _prefix()
        const sentinel = yield* _collect(`${p}.sentinel`)
        const received = yield* Effect.scoped(Effect.gen(function* () {
          const inner = yield* _collect(`${p}.gone`)
          yield* bus.publish(`${p}.gone`, bytes("before"))
          yield* eventually("the first message", () => inner.length === 1)
          return inner
        }))
        yield* bus.publish(`${p}.gone`, bytes("after"))
        yield* bus.publish(`${p}.sentinel`, bytes("sentinel"))
        yield* eventually("the sentinel", () => sentinel.length === 1)
        assert.deepStrictEqual(received.map((m) => text(m.data)), ["before"])
        const error = yield* Effect.flip(bus.request(`${p}.gone`, bytes("?"), { timeoutMs: 2000 }))
        assert.strictEqual(error._tag, "BusNoResponders")
      }), timeout)
  })
