/** The audit contract on embedded PGlite (in memory, one server for the suite). */
import { describeAuditContract } from "./audit-contract.ts"

describeAuditContract("pglite")
