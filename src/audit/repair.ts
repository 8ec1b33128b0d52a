/**
 * `--rebuild`: repairs one host's live read tables from its log, atomically. One owner
 * transaction locks the host's log partition (SHARE ROW EXCLUSIVE: waits for the host's
 * in-flight appends and holds new ones until commit; the live write path needs no change,
 * since its projection writes always follow an append in the same transaction), verifies
 * the chain (a broken log is never projected into live tables), rebuilds into a scratch
 * schema with the live projection code, diffs, and repairs the drifted tables' rows of this
 * host only, in the model's columns only: the columns of fields removed from the model keep
 * their data. Readers see the old rows until the commit; other hosts are untouched.
 */
import { Effect } from "effect"
import type { LoadedProject } from "../projects/loader.ts"
import { query, type Sql, type SqlTx } from "../store/database.ts"
import { partitionName } from "../store/event-log.ts"
import { quoteIdentifier as q, tableName } from "../store/model-ddl.ts"
import { withOwnerTransaction } from "../store/transaction.ts"
import { comparedColumns, diffHost, type DiffReport, rowJsonSql } from "./diff.ts"
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
  /** `schema.table` names whose rows of this host were repaired. */
  readonly tables: ReadonlyArray<string>
}

/**
 * Brings `host`'s rows of one table in line with the rebuilt ones: rows the log does not make
 * go, rows that differ get the rebuilt values, missing rows come in. Only the model's compared
 * columns are written: a column kept from a removed field keeps its data on every row that
 * stays (README: nothing is ever dropped), where a delete and re-insert would leave it null.
 */
const repairHostRows = (tx: SqlTx, project: LoadedProject, host: string, scratch: string, table: string) =>
  Effect.gen(function* () {
    const model = project.models.find((m) => `${project.name}.${m.table}` === table)
    if (!model) return
    const live = tableName(project.name, model)
    const rebuilt = tableName(scratch, model)
    const columns = comparedColumns(model)
    const assignments = columns.filter((c) => c !== "id").map((c) => `${q(c)} = r.${q(c)}`)
    yield* query(() =>
      tx.unsafe(
        `delete from ${live} l where l.host = $1
           and not exists (select from ${rebuilt} r where r.host = $1 and r.id = l.id)`,
        [host],
      )
    )
    if (assignments.length > 0) {
      yield* query(() =>
        tx.unsafe(
          `update ${live} l set ${assignments.join(", ")} from ${rebuilt} r
           where l.host = $1 and r.host = $1 and r.id = l.id
             and ${rowJsonSql(model, "l")} is distinct from ${rowJsonSql(model, "r")}`,
          [host],
        )
      )
    }
    const inserted = ["host", ...columns].map(q).join(", ")
    yield* query(() =>
      tx.unsafe(
        `insert into ${live} (${inserted}) select ${inserted} from ${rebuilt} r where r.host = $1
           and not exists (select from ${live} l where l.host = $1 and l.id = r.id)`,
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
      for (const table of targets) yield* repairHostRows(tx, project, host, scratch, table)
      yield* dropScratchSchema(tx, scratch)
      return { host, chain, replayed, repaired, tables: targets } satisfies RepairReport
    })).pipe(Effect.withSpan("audit.repairHost", { attributes: { host } }))
