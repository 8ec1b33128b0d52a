/** The store contract on embedded PGlite (in memory, a fresh instance for the suite). */
import { describeStoreContract } from "./store-contract.ts"

describeStoreContract("pglite")
