/**
 * Host header normalisation (DESIGN.md §1): lower-case, port stripped, one trailing dot
 * stripped, IDN → punycode, RFC 1123 validation. Invalid headers give undefined (→ 400).
 */
import { describe, expect, it } from "vitest"
import { isValidHostname, normaliseHost, normaliseHostHeader } from "../../src/ingress/host.ts"

const label63 = "a".repeat(63)

describe("normaliseHost()", () => {
  it.each([
    ["blog.example.com", "blog.example.com"],
    ["Blog.Example.COM", "blog.example.com"],
    ["blog.example.com:8080", "blog.example.com"],
    ["blog.example.com:", "blog.example.com"], // an empty port (RFC 9110 allows it)
    ["Blog.Example.COM:8080", "blog.example.com"],
    ["blog.example.com.", "blog.example.com"],
    ["blog.example.com.:443", "blog.example.com"],
    ["  blog.example.com  ", "blog.example.com"],
    ["localhost", "localhost"],
    ["bücher.example", "xn--bcher-kva.example"],
    ["BÜCHER.example:80", "xn--bcher-kva.example"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["a-b.example.com", "a-b.example.com"],
    ["1.2.3.4", "1.2.3.4"], // digits are valid RFC 1123 labels: an IP is a (never routed) name
    ["1.2.3.4:8080", "1.2.3.4"],
    [`${label63}.com`, `${label63}.com`],
    [
      [label63, label63, label63, "a".repeat(61)].join("."),
      [label63, label63, label63, "a".repeat(61)].join("."),
    ],
  ])("normalises %j to %j", (header, expected) => {
    expect(normaliseHost(header)).toBe(expected)
  })

  it.each([
    ["empty", ""],
    ["null", null],
    ["undefined", undefined],
    ["only a dot", "."],
    ["two trailing dots", "blog.example.com.."],
    ["an empty label", "a..b"],
    ["a leading hyphen", "-a.com"],
    ["a label ending in a hyphen", "a-.com"],
    ["a 64-char label", `${"a".repeat(64)}.com`],
    ["over 253 chars", [label63, label63, label63, "a".repeat(62)].join(".")],
    ["an underscore", "under_score.com"],
    ["a space", "a b.com"],
    ["a space inside", "exa mple.com"],
    ["an IPv6 literal", "[::1]:80"],
    ["an IPv6 literal without port", "[::1]"],
    ["a non-numeric port", "host:port"],
    ["a six-digit port", "blog.example.com:123456"],
    ["userinfo", "user@blog.example.com"],
    ["a slash", "blog.example.com/evil"],
    ["a percent escape", "blog%2eexample.com"],
    ["a backslash", "blog.example.com\\evil"],
    ["a bad IDN", "bü_cher.example"],
  ])("rejects %s", (_what, header) => {
    expect(normaliseHost(header)).toBeUndefined()
  })

  it("never throws, whatever the header", () => {
    for (
      const header of [
        "\u0000",
        "::::",
        "[",
        "]",
        "..",
        "\uFFFF.com",
        "a".repeat(10_000),
        "%",
        "é".repeat(100),
      ]
    ) {
      expect(() => normaliseHost(header)).not.toThrow()
    }
  })

  it("is idempotent: a normalised host normalises to itself", () => {
    for (const header of ["Blog.Example.COM:8080", "bücher.example.", "1.2.3.4"]) {
      const once = normaliseHost(header)!
      expect(normaliseHost(once)).toBe(once)
      expect(isValidHostname(once)).toBe(true)
    }
  })
})

/** A header value as the ingress receives it: the UTF-8 bytes a client sent, one character each. */
const asReceived = (text: string) => String.fromCharCode(...new TextEncoder().encode(text))

describe("normaliseHostHeader()", () => {
  it.each([
    ["bücher.example", "xn--bcher-kva.example"],
    ["BÜCHER.example:8080", "xn--bcher-kva.example"],
    ["blog\u3002example\u3002com", "blog.example.com"], // ideographic full stops (UTS #46)
    ["blog.example.com", "blog.example.com"],
  ])("reads %j sent in UTF-8 as %j", (sent, expected) => {
    expect(normaliseHostHeader(asReceived(sent))).toBe(expected)
  })

  it("refuses bytes that are not UTF-8 (a Latin-1 ü) and characters no byte string holds", () => {
    expect(normaliseHostHeader("b\u00fccher.example")).toBeUndefined()
    expect(normaliseHostHeader("b\u0100cher.example")).toBeUndefined()
    expect(normaliseHostHeader(null)).toBeUndefined()
  })
})
