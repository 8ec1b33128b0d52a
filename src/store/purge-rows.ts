/**
 * The statement a purge (HamletRowsPurged) runs on a model table: it deletes the listed rows
 * that are still soft-deleted before the purge's cutoff, never by id alone. The cleanup job
 * listed ids outside the host's transaction (it reads them in it now, but old purges replay as
 * they were); a row the tenant re-created before such a purge committed was live by then and stays — and in a replay too, where the purge comes after the
 * re-create in the host's log, as it committed after it.
 */
import type { SqlTx } from "./database.ts"
import type { Column } from "./model-ddl.ts"
import { type Statement, unnestAs } from "./multi-row-insert.ts"

export const purgeStatement = (
  tx: SqlTx,
  table: string,
  host: string,
  idColumn: Column,
  ids: ReadonlyArray<string>,
  deletedBefore: Date,
): Statement => {
  const form = unnestAs(idColumn)
  // ids come as the job listed them (`id::text`): compared in the column's own type where it
  // has an array form, so the primary key finds them; as text otherwise
  const matchesId = form && !form.isJsonText ? `id = any($2::${form.array})` : "id::text = any($2::text[])"
  return {
    text: `delete from ${table} where host = $1 and ${matchesId}
           and deleted_at is not null and deleted_at < $3::timestamptz`,
    // type 0: Postgres names the array type
    params: [host, tx.typed([...ids], 0), deletedBefore.toISOString()],
    prepare: true,
  }
}
