/**
 * `--verify`: in one REPEATABLE READ snapshot, check the host's hash chain and seq
 * continuity, then rebuild its projections from the log into a scratch schema and diff
 * them against the live read tables (skipped with `chainOnly`: integrity alone, fast). The snapshot is rolled back: the scratch goes with it.
 */
import { Effect } from "effect"
import type { LoadedProject } from "../projects/loader.ts"
import type { Sql } from "../store/database.ts"
import { withSnapshot } from "./audit-transaction.ts"
import { type ChainReport, isIntact } from "./chain.ts"
import { diffHost, type DiffReport } from "./diff.ts"
import { type Replayed, replayInto } from "./replay.ts"
import { createScratchSchema } from "./scratch.ts"
import { verifyHostChain } from "./verify-chain.ts"

export interface VerifyReport {
  readonly host: string
  readonly chain: ChainReport
  readonly replayed: Replayed
  /** Undefined with `chainOnly`: the projections were not rebuilt. */
  readonly projections: DiffReport | undefined
  /** Wall time of each phase, ms. */
  readonly timings: { readonly chainMs: number; readonly replayMs: number; readonly diffMs: number }
}

export const isVerified = (report: VerifyReport): boolean =>
  isIntact(report.chain) &&
  (report.projections === undefined ||
    (report.projections.drifts.length === 0 && report.projections.moreDrifts === 0))

export const verifyHost = (
  sql: Sql,
  project: LoadedProject,
  host: string,
  options: { readonly chainOnly?: boolean } = {},
) =>
  withSnapshot(sql, (tx) =>
    Effect.gen(function* () {
      const t0 = performance.now()
      const chain = yield* verifyHostChain(tx, host)
      const t1 = performance.now()
      if (options.chainOnly) {
        const timings = { chainMs: t1 - t0, replayMs: 0, diffMs: 0 }
        return {
          host,
          chain,
          replayed: { events: 0, lastSeq: 0 },
          projections: undefined,
          timings,
        } satisfies VerifyReport
      }
      const scratch = yield* createScratchSchema(tx, project.models)
      const replayed = yield* replayInto(tx, project, host, scratch)
      const t2 = performance.now()
      const projections = yield* diffHost(tx, project.models, host, project.name, scratch)
      const timings = { chainMs: t1 - t0, replayMs: t2 - t1, diffMs: performance.now() - t2 }
      return { host, chain, replayed, projections, timings } satisfies VerifyReport
    })).pipe(Effect.withSpan("audit.verifyHost", { attributes: { host } }))
