/**
 * Verifies a host's hash chain and seq continuity straight from Postgres, streaming the
 * whole log through a cursor (constant memory) into the chain verifier.
 */
import { Effect } from "effect"
import { query, type SqlTx } from "../store/database.ts"
import { type ChainReport, makeChainVerifier } from "./chain.ts"
import { hashedFields } from "./event-line.ts"
import { eventCursor, readAhead } from "./export.ts"

/**
 * Checks every event of `host` from seq 1; `tx` should be the caller's own connection. The
 * live log starts at seq 1 on the genesis hash, so a first event past seq 1 is a break
 * (events deleted from the start), never an anchor taken on trust.
 */
export const verifyHostChain = (tx: SqlTx, host: string) =>
  query(async (): Promise<ChainReport> => {
    const verifier = makeChainVerifier({ host, fromSeq: 1 })
    for await (const batch of readAhead(eventCursor(tx, host))) {
      for (const event of batch) verifier.push(hashedFields(event), event.hash)
    }
    return verifier.report()
  }).pipe(Effect.withSpan("audit.verifyHostChain", { attributes: { host } }))
