/** The audit contract on the real Postgres (a scratch database for the suite). */
import { describe } from "vitest"
import { checkService } from "../support/services.ts"
import { describeAuditContract } from "./audit-contract.ts"

const hasPostgres = await checkService("postgres")
describe.skipIf(!hasPostgres)("on postgres", () => {
  describeAuditContract("postgres")
})
