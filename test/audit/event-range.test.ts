/**
 * Time bounds of a log listing (`--since/--until/--at`, the export's query): an ISO-8601 instant
 * read the same wherever the server runs, and a date that does not exist refused.
 */
import { describe, expect, it } from "vitest"
import { parseInstant } from "../../src/audit/event-range.ts"

describe("parseInstant()", () => {
  it.each([
    ["2026-11-23", "2026-11-23T00:00:00.000Z"],
    ["2026-11-23T21:45", "2026-11-23T21:45:00.000Z"], // no offset: UTC, not the server's zone
    ["2026-11-23 21:45:07", "2026-11-23T21:45:07.000Z"],
    ["2026-11-23T21:45:07.123456Z", "2026-11-23T21:45:07.123Z"],
    ["2026-11-23T21:45:07+01:00", "2026-11-23T20:45:07.000Z"],
    ["2026-11-23T21:45:07-0530", "2026-11-24T03:15:07.000Z"],
    ["2024-02-29T00:00:00z", "2024-02-29T00:00:00.000Z"],
  ])("reads %j as %s", (text, iso) => {
    expect(parseInstant("since", text).toISOString()).toBe(iso)
  })

  it.each([
    "2026-02-30",
    "2025-02-29",
    "2026-13-01",
    "2026-11-23T24:00",
    "2026-11-23T21:60",
    "yesterday",
    "2026-1-1",
    "",
  ])(
    "refuses %j, naming the bound",
    (text) => {
      expect(() => parseInstant("since", text)).toThrow(/^since must be an ISO-8601 time/)
    },
  )
})
