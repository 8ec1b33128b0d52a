/**
 * A NATS URL's user and password never reach a log or an error message: the failure to connect
 * names the server without them.
 */
import { Effect, Exit, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { makeNatsBus, withoutCredentials } from "../../src/bus/nats.ts"
import { freePort } from "../support/node-process.ts"

describe("NATS credentials in messages", () => {
  it("withoutCredentials() drops user and password from every server of a list", () => {
    expect(withoutCredentials("nats://alice:s3cretpw@127.0.0.1:4222")).toBe("nats://127.0.0.1:4222")
    expect(withoutCredentials("tls://tok@a:4222,nats://b:4222, u:p@c:4222")).toBe(
      "tls://a:4222,nats://b:4222, c:4222",
    )
    expect(withoutCredentials("bob:pw@127.0.0.1:4222")).toBe("127.0.0.1:4222")
    expect(withoutCredentials("nats://127.0.0.1:4222")).toBe("nats://127.0.0.1:4222")
  })

  it("a failed connect names the server without its password", async () => {
    const port = await freePort() // nothing listens there
    const scope = Effect.runSync(Scope.make())
    const exit = await Effect.runPromise(
      Effect.exit(Scope.provide(makeNatsBus(`nats://alice:s3cretpw@127.0.0.1:${port}`), scope)),
    )
    await Effect.runPromise(Scope.close(scope, Exit.void))
    expect(Exit.isFailure(exit)).toBe(true)
    const message = JSON.stringify(exit)
    expect(message).toContain(`cannot connect to NATS at nats://127.0.0.1:${port}`)
    expect(message).not.toContain("s3cretpw")
  })
})
