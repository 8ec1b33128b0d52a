/** The store contract on the real Postgres (a scratch database; skips locally if absent, CI requires it). */
import { describe } from "vitest"
import { checkService } from "../support/services.ts"
import { describeStoreContract } from "./store-contract.ts"

const available = await checkService("postgres")

describe.skipIf(!available)("postgres", () => {
  describeStoreContract("postgres")
})
