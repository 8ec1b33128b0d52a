/**
 * `--verify`: in one REPEATABLE READ snapshot, check the host's hash chain and seq
 * continuity, then rebuild its projections from the log into a scratch schema and diff
 * them against the live read tables (skipped with `chainOnly`: integrity alone, fast). The snapshot is rolled back: the scratch goes with it.
 */
import { Cause, Effect, Exit } from "effect"
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
  /** Undefined with `chainOnly`, or when a broken chain's events could not be replayed. */
  readonly projections: DiffReport | undefined
  /** Why the projections could not be rebuilt from a broken chain. */
  readonly replayError?: string
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
      const rebuilt = yield* Effect.exit(Effect.gen(function* () {
        const scratch = yield* createScratchSchema(tx, project.models)
        const replayed = yield* replayInto(tx, project, host, scratch)
        const t2 = performance.now()
        const projections = yield* diffHost(tx, project.models, host, project.name, scratch)
        return { replayed, projections, replayMs: t2 - t1, diffMs: performance.now() - t2 }
      }))
      if (Exit.isFailure(rebuilt)) {
        // tampered data can make the projections fail (a null where a row was): the broken chain
        // is the finding then, reported with why the rebuild could not be checked
        if (isIntact(chain)) return yield* Effect.failCause(rebuilt.cause)
        const why = Cause.squash(rebuilt.cause)
        return {
          host,
          chain,
          replayed: { events: 0, lastSeq: 0 },
          projections: undefined,
          replayError: `the rebuild failed on the broken log: ${
            why instanceof Error ? why.message : String(why)
          }`,
          timings: { chainMs: t1 - t0, replayMs: performance.now() - t1, diffMs: 0 },
        } satisfies VerifyReport
      }
      const { replayed, projections, replayMs, diffMs } = rebuilt.value
      const timings = { chainMs: t1 - t0, replayMs, diffMs }
      return { host, chain, replayed, projections, timings } satisfies VerifyReport
    })).pipe(Effect.withSpan("audit.verifyHost", { attributes: { host } }))
