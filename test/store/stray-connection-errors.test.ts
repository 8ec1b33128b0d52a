/**
 * stray-connection-errors.ts: which unhandled rejections an isolate may drop — postgres.js' own
 * connection errors, and a refused connect it reported on its own statement — and which still end it.
 */
import { describe, expect, it } from "vitest"
import { isStrayConnectionError } from "../../src/store/stray-connection-errors.ts"

const withCode = (code: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(code), { code, ...extra })

describe("isStrayConnectionError()", () => {
  it("is true of postgres.js' connection errors and of a refused or reset connection on postgres.js' own statement", () => {
    expect(isStrayConnectionError(withCode("CONNECTION_CLOSED", { errno: "CONNECTION_CLOSED" }))).toBe(true)
    expect(isStrayConnectionError(withCode("ECONNREFUSED", { query: "select b.oid, b.typarray" }))).toBe(true)
    // seen in CI: the store reset a new connection during postgres.js' array-type fetch
    expect(isStrayConnectionError(withCode("ECONNRESET", { query: "select b.oid, b.typarray" }))).toBe(true)
  })

  it("is false of a refused connect nobody sent a statement on, Hamlet's own errors and anything else", () => {
    expect(isStrayConnectionError(withCode("ECONNREFUSED"))).toBe(false)
    expect(isStrayConnectionError(withCode("ECONNRESET"))).toBe(false)
    expect(isStrayConnectionError(withCode("CONNECTION_UNREACHABLE"))).toBe(false)
    expect(isStrayConnectionError(withCode("23505", { query: "insert" }))).toBe(false)
    expect(isStrayConnectionError(new Error("boom"))).toBe(false)
    expect(isStrayConnectionError({ code: "ECONNREFUSED", query: "select 1" })).toBe(false)
  })
})
