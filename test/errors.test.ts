/**
 * errors.ts `storeFailure` and `busFailure`: what a caller is told of a store or bus failure, by
 * what is true of its write — nothing written (retry), an unknown outcome (may have been applied:
 * safe to retry only with an idempotency key), a conflict with the log, or a bug (internal).
 */
import { describe, expect, it } from "vitest"
import { busFailure, storeFailure } from "../src/errors.ts"
import { BusTimeout, BusUnavailable } from "../src/bus/bus.ts"
import { COMMIT_UNKNOWN, DatabaseError, UNIQUE_VIOLATION } from "../src/store/database.ts"
import { STORE_UNREACHABLE } from "../src/store/reachability.ts"

const command = { kind: "command", requestId: "req-1" } as const
const keyed = { ...command, idempotencyKey: "key-1" }
const query = { kind: "query", requestId: "req-2" } as const

describe("storeFailure()", () => {
  it("says nothing was written, retry (503), when the store was unreachable or the connection lost", () => {
    const failures = [
      new DatabaseError({ message: "refused", code: STORE_UNREACHABLE, connectionLost: true }),
      new DatabaseError({ message: "Connection refused", code: "ECONNREFUSED" }),
      new DatabaseError({
        message: "write CONNECTION_CLOSED",
        code: "CONNECTION_CLOSED",
        connectionLost: true,
      }),
      new DatabaseError({ message: "terminating connection due to administrator command", code: "57P01" }),
      new DatabaseError({ message: "the database system is starting up", code: "57P03" }),
    ]
    for (const error of failures) {
      expect(storeFailure(error, command), error.message).toEqual({
        code: "overloaded",
        message: "the store is unavailable; nothing was written, retry",
      })
      expect(storeFailure(error, keyed).code).toBe("overloaded")
      expect(storeFailure(error, query)).toEqual({
        code: "overloaded",
        message: "the store is unavailable; retry",
      })
    }
  })

  it("says the write may have been applied when the commit's outcome is unknown: 503 with a key, 500 without", () => {
    const error = new DatabaseError({
      message: "commit outcome unknown: write CONNECTION_CLOSED",
      code: COMMIT_UNKNOWN,
      connectionLost: true,
    })
    const withKey = storeFailure(error, keyed)
    expect(withKey).toMatchObject({ code: "overloaded", requestId: "req-1" })
    expect(withKey.message).toMatch(/may have been applied; retrying with the same Idempotency-Key is safe/)
    const withoutKey = storeFailure(error, command)
    expect(withoutKey).toMatchObject({ code: "internal", requestId: "req-1" })
    expect(withoutKey.message).toMatch(/may have been applied/)
    expect(withoutKey.message).toMatch(/check before sending it again/)
  })

  it("answers a unique violation of the log as a conflict, and any other store error as internal", () => {
    const logConflict = new DatabaseError({
      message: "duplicate key",
      code: UNIQUE_VIOLATION,
      constraint: "hamlet_events_stream_version_key",
    })
    expect(storeFailure(logConflict, command).code).toBe("conflict")
    const others = [
      new DatabaseError({ message: "duplicate key", code: UNIQUE_VIOLATION, constraint: "note_pkey" }),
      new DatabaseError({ message: "syntax error", code: "42601" }),
      new DatabaseError({
        message: "the transaction failed and was rolled back",
        code: "hamlet_rolled_back",
      }),
      new DatabaseError({ message: "no code" }),
    ]
    for (const error of others) {
      expect(storeFailure(error, keyed), error.message).toEqual({
        code: "internal",
        message: "internal error",
        requestId: "req-1",
      })
    }
  })
})

describe("busFailure()", () => {
  const lost = new BusUnavailable({ message: "NATS disconnected before the answer", sent: true })
  const refused = new BusUnavailable({ message: "NATS is disconnected; request refused" })
  const timedOut = new BusTimeout({ subject: "hamlet.req.x", timeoutMs: 5000 })

  it("says a command that went out may have been applied: 503 with its key (safe retry), 500 without", () => {
    const withKey = busFailure(lost, keyed)
    expect(withKey).toMatchObject({ code: "overloaded", requestId: "req-1" })
    expect(withKey.message).toMatch(/may have been applied; retrying with the same Idempotency-Key is safe/)
    const withoutKey = busFailure(lost, command)
    expect(withoutKey).toMatchObject({ code: "internal", requestId: "req-1" })
    expect(withoutKey.message).toMatch(/may have been applied; check before sending it again/)
    expect(busFailure(timedOut, command)).toMatchObject({ code: "timeout" })
    expect(busFailure(timedOut, keyed).message).toMatch(
      /did not answer in time: .*same Idempotency-Key is safe/,
    )
  })

  it("is a plain retry (503) when nothing went out, or for a query, whose retry is always safe", () => {
    expect(busFailure(refused, command)).toEqual({ code: "overloaded", message: "the bus is unavailable" })
    expect(busFailure(lost, query)).toEqual({ code: "overloaded", message: "the bus is unavailable" })
    expect(busFailure(timedOut, query)).toEqual({
      code: "timeout",
      message: "the handler did not answer in time",
    })
  })
})

describe("errorResponse()", () => {
  it("answers a code outside the contract (a foreign responder's) with 500, never 200", async () => {
    const { errorResponse } = await import("../src/ingress/responses.ts")
    const response = errorResponse({ code: "teapot" as never, message: "not ours" })
    expect(response.status).toBe(500)
    expect(errorResponse({ code: "conflict", message: "exists" }).status).toBe(409)
  })
})
