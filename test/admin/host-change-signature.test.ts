/**
 * Signed host commands: signHostChange() follows the recipe the README gives other services
 * (a plain HMAC-SHA256, hex), and verifyHostCommand() takes exactly those, within a minute of
 * the node's clock, refusing everything else — also every command of a project without a key.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { createHmac } from "node:crypto"
import { signHostChange, verifyHostCommand } from "../../src/admin/host-change-signature.ts"
import { SUBJECT_ROOT } from "../../src/bus/subjects.ts"

const KEY = "horatio-signing-key-for-tests"
const AT = 1_750_000_000_000
const command = { action: "add", project: "horatio", host: "guest.example.com" } as const

/** The refusal's message, or "ok"; `key` null: the project has no key. */
const verdict = (message: Parameters<typeof verifyHostCommand>[0], key: string | null = KEY) =>
  verifyHostCommand(message, key === null ? undefined : Redacted.make(key)).pipe(
    Effect.as("ok"),
    Effect.catchTag("HostCommandRefused", (refused) => Effect.succeed(refused.message)),
  )

it("signHostChange() signs the README's text with a plain HMAC-SHA256 of the project key", () => {
  const text = `${SUBJECT_ROOT}\nadd\nhoratio\nguest.example.com\n${AT}`
  const expected = createHmac("sha256", KEY).update(text).digest("hex")
  assert.deepStrictEqual(signHostChange(command, KEY, AT), { ...command, at: AT, signature: expected })
  assert.deepStrictEqual(signHostChange(command, Redacted.make(KEY), AT).signature, expected)
})

it.effect("verifyHostCommand() refuses a command signed for another subject root (another fleet)", () =>
  Effect.gen(function* () {
    yield* TestClock.setTime(AT)
    const otherRoot = `${SUBJECT_ROOT}-other`
    assert.match(yield* verdict(signHostChange(command, KEY, AT, otherRoot)), /not valid/)
  }))

it.effect("verifyHostCommand() accepts a signed command within a minute of the clock, either way", () =>
  Effect.gen(function* () {
    yield* TestClock.setTime(AT)
    assert.strictEqual(yield* verdict(signHostChange(command, KEY, AT)), "ok")
    assert.strictEqual(yield* verdict(signHostChange(command, KEY, AT - 60_000)), "ok")
    assert.strictEqual(yield* verdict(signHostChange(command, KEY, AT + 60_000)), "ok")
  }))

it.effect("verifyHostCommand() refuses a stale or future at, a wrong key, a changed field and no signature", () =>
  Effect.gen(function* () {
    yield* TestClock.setTime(AT)
    const signed = signHostChange(command, KEY, AT)
    assert.match(yield* verdict(signHostChange(command, KEY, AT - 60_001)), /stale/)
    assert.match(yield* verdict(signHostChange(command, KEY, AT + 5 * 60_000)), /stale/)
    assert.match(yield* verdict(signHostChange(command, "another-key-entirely-0123", AT)), /not valid/)
    assert.match(yield* verdict({ ...signed, host: "other.example.com" }), /not valid/)
    assert.match(yield* verdict({ ...signed, action: "remove" }), /not valid/)
    assert.match(yield* verdict({ ...signed, at: AT + 1 }), /not valid/)
    assert.match(yield* verdict({ ...signed, signature: signed.signature.toUpperCase() }), /not valid/)
    assert.match(yield* verdict({ ...signed, signature: signed.signature.slice(2) }), /not valid/)
    assert.match(yield* verdict(command), /must be signed/)
    assert.match(yield* verdict({ ...command, at: AT }), /must be signed/)
  }))

it.effect("verifyHostCommand() refuses every command of a project without a key, never naming a key", () =>
  Effect.gen(function* () {
    yield* TestClock.setTime(AT)
    const refused = yield* verdict(signHostChange(command, KEY, AT), null)
    assert.strictEqual(refused, "host changes over NATS are disabled for a project without a key")
    const wrong = yield* verdict(signHostChange(command, "another-key-entirely-0123", AT))
    assert.notInclude(wrong, KEY)
    assert.notInclude(wrong, signHostChange(command, KEY, AT).signature)
  }))
