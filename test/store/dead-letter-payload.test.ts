/**
 * What a dead letter keeps of its request (dead-letters.ts `withoutSession`): the bytes as they
 * arrived when they hold no session — a retry sends the same input — and never a session.
 */
import { describe, expect, it } from "vitest"
import { withoutSession } from "../../src/store/dead-letters.ts"

describe("withoutSession()", () => {
  it("keeps a request without a session as it arrived, numbers beyond a double included", () => {
    const text = '{"id":"dl5","input":{"title":"big","n":1e400,"id":9007199254740993,"x":1.0}}'
    expect(withoutSession(text)).toBe(text)
  })

  it("drops the session however the envelope spells or repeats it", () => {
    for (
      const text of [
        '{"id":"a","meta":{"session":"s3cret","correlationId":"c"},"input":{}}',
        '{"id":"b","meta":{"\\u0073ession":"s3cret"},"input":{}}',
        '{"id":"c","meta":{"session":"s3cret"},"meta":{"correlationId":"c"},"input":{}}',
      ]
    ) {
      const stored = withoutSession(text)
      expect(stored).not.toContain("s3cret")
      expect(JSON.parse(stored).id).toBe(JSON.parse(text).id)
    }
  })
})
