/**
 * `--rebuild`: repairs one host's live read tables from its log, atomically. One owner
 * transaction locks the host's log partition (SHARE ROW EXCLUSIVE: waits for the host's
 * in-flight appends and holds new ones until commit; the live write path needs no change,
 * since its projection writes always follow an append in the same transaction), verifies
 * the chain (a broken log is never projected into live tables), rebuilds into a scratch
 * schema with the live projection code, diffs, and replaces the drifted tables' rows of
 * this host only. Readers see the old rows until the commit; other hosts are untouched.
 */
import { Effect } from "effect"
import type { LoadedProject } from "../projects/loader.ts"
import { query, type Sql, type SqlTx } from "../store/database.ts"
import { partitionName } from "../store/event-log.ts"
import { quoteIdentifier as q, tableName } from "../store/model-ddl.ts"
import { withOwnerTransaction } from "../store/transaction.ts"
import { comparedColumns, diffHost, type DiffReport } from "./diff.ts"
import { type Replayed, replayInto } from "./replay.ts"
import { createScratchSchema, dropScratchSchema } from "./scratch.ts"
import { type ChainReport, isIntact } from "./chain.ts"
import { verifyHostChain } from "./verify-chain.ts"

const NOTHING: DiffReport = { tables: 0, drifts: [], moreDrifts: 0 }

export interface RepairReport {
  readonly host: string
  /** The chain is checked first: a broken log is never projected into the live tables. */
  readonly chain: ChainReport
  readonly replayed: Replayed
  /** What was wrong before the repair (and is now fixed). */
  readonly repaired: DiffReport
  /** `schema.table` names whose rows of this host were replaced. */
  readonly tables: ReadonlyArray<string>
}

const replaceHostRows = (tx: SqlTx, project: LoadedProject, host: string, scratch: string, table: string) =>
  Effect.gen(function* () {
    const model = project.models.find((m) => `${project.name}.${m.table}` === table)
    if (!model) return
    const columns = ["host", ...comparedColumns(model)].map(q).join(", ")
    yield* query(() => tx.unsafe(`delete from ${tableName(project.name, model)} where host = $1`, [host]))
    yield* query(() =>
      tx.unsafe(
        `insert into ${tableName(project.name, model)} (${columns})
         select ${columns} from ${tableName(scratch, model)} where host = $1`,
        [host],
      )
    )
  })

export const repairHost = (sql: Sql, project: LoadedProject, host: string) =>
  withOwnerTransaction(sql, (tx) =>
    Effect.gen(function* () {
      yield* query(() => tx.unsafe(`lock table ${q(partitionName(host))} in share row exclusive mode`))
      const chain = yield* verifyHostChain(tx, host)
      if (!isIntact(chain)) {
        return { host, chain, replayed: { events: 0, lastSeq: 0 }, repaired: NOTHING, tables: [] }
      }
      const scratch = yield* createScratchSchema(tx, project.models)
      const replayed = yield* replayInto(tx, project, host, scratch)
      const repaired = yield* diffHost(tx, project.models, host, project.name, scratch)
      const tables = [...new Set(repaired.drifts.map((d) => d.table))]
      // more drift than the report keeps: replace every table rather than miss one
      const targets = repaired.moreDrifts > 0
        ? project.models.map((m) => `${project.name}.${m.table}`)
        : tables
      for (const table of targets) yield* replaceHostRows(tx, project, host, scratch, table)
      yield* dropScratchSchema(tx, scratch)
      return { host, chain, replayed, repaired, tables: targets } satisfies RepairReport
    })).pipe(Effect.withSpan("audit.repairHost", { attributes: { host } }))
