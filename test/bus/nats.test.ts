/** The Bus contract against the shared NATS server (skips locally if absent; CI requires it). */
import { describe } from "vitest"
import { NatsBusLive } from "../../src/bus/nats.ts"
import { checkService, NATS_URL } from "../support/services.ts"
import { describeBusContract } from "./contract.ts"

const available = await checkService("nats")

describe.skipIf(!available)("nats", () => {
  describeBusContract("nats", () => NatsBusLive(NATS_URL, { name: "hamlet-test" }))
})
