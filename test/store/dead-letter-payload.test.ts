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

  it("keeps text that is not JSON only up to where a session key could begin, however it is spelled", () => {
    const cases = [
      // a key spelled with an escape
      '{"id":"dl-5","meta":{"sess\\u0069on":"SECRET5"},"input":{"title":5}',
      '{"id":"dl-6","meta":{"\\u0073\\u0065\\u0073\\u0073\\u0069\\u006f\\u006e":"SECRET6"},"input":{',
      '{"id":"dl-7","meta":{"s\\u0065ssion":"SECRET7"},"input":{',
      // a value that is an object or an array, with commas in it
      '{"id":"dl-8","meta":{"session":{"a":1,"b":"SECRET8"}},"input":{',
      '{"id":"dl-9","meta":{"session":["t","SECRET9"]},"input":{',
      // a string cut short
      '{"id":"dl-10","meta":{"session":"SECRET10',
    ]
    for (const text of cases) {
      const stored = withoutSession(text)
      expect([text, stored]).not.toEqual([text, expect.stringMatching(/SECRET/)])
      expect(stored).toMatch(/^\{"id":"dl-\d+","meta":\{"(s)?\[redacted: \d+ characters\]$/)
    }
    expect(withoutSession('{"id":"x","input":{"title":"no key here"')).toBe(
      '{"id":"x","input":{"title":"no key here"',
    )
  })
})
