/**
 * A request the bus delivers after its host actor's scope closed (an unsubscribe still draining, a
 * host just removed) is refused as "shutting down", command or query alike — also for a host that
 * was never asked anything before — never run by a worker no scope owns.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { DeadLetters } from "../../src/actors/dead-letters.ts"
import { startHostActor } from "../../src/actors/host-actor.ts"
import { Bus, type BusMessage } from "../../src/bus/bus.ts"
import { decodeText, encodeJson } from "../../src/bus/envelope.ts"
import { requestSubject } from "../../src/bus/subjects.ts"
import { loadProject } from "../../src/projects/loader.ts"
import type { Sql } from "../../src/store/database.ts"
import type { ReadLanes } from "../../src/store/read-lanes.ts"

const HOST = "late.delivery.test"

/** A bus that only keeps the actor's callback, so the test can deliver after the scope closed. */
const capturingBus = () => {
  let deliver: ((message: BusMessage) => void) | undefined
  const layer = Layer.mock(Bus)({
    subscribe: (_subject, onMessage) => Effect.sync(() => void (deliver = onMessage)),
    publish: () => Effect.void,
    maxPayload: 1024 * 1024,
  })
  return { layer, deliver: (message: BusMessage) => deliver!(message) }
}

/** The store is never reached: a late request must be refused before it. */
const unreachable = new Proxy({}, {
  get: () => {
    throw new Error("the store was reached")
  },
})

const deliverLate = async (handler: string, input: unknown) => {
  const project = await Effect.runPromise(loadProject("./projects/horatio", undefined))
  const bus = capturingBus()
  const scope = Effect.runSync(Scope.make())
  await Effect.runPromise(
    startHostActor(unreachable as Sql, unreachable as ReadLanes, project, HOST).pipe(
      Scope.provide(scope),
      Effect.provide(bus.layer),
      Effect.provideService(DeadLetters, { record: () => {} }),
    ),
  )
  await Effect.runPromise(Scope.close(scope, Exit.void))
  return new Promise<unknown>((resolve) =>
    bus.deliver({
      subject: requestSubject("horatio", HOST, handler),
      data: encodeJson({ id: `late-${handler}`, input }),
      headers: {},
      reply: "_INBOX.late",
      respond: (data) => resolve(JSON.parse(decodeText(data))),
    })
  )
}

describe("a request delivered after its host actor stopped", () => {
  it("refuses a query to a host never queried before as shutting down", async () => {
    expect(await deliverLate("GetFeed", {})).toEqual({
      ok: false,
      error: { code: "overloaded", message: `host ${HOST} is shutting down; retry` },
    })
  })

  it("refuses a command as shutting down, not as busy", async () => {
    expect(await deliverLate("SubmitItem", { title: "late" })).toEqual({
      ok: false,
      error: { code: "overloaded", message: `host ${HOST} is shutting down; retry` },
    })
  })
})
