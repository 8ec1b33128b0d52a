/**
 * The newest signed host command applied per project and host (`hamlet_signed_host_changes`): a signed
 * `add` or `remove` on `<root>.ctl.hosts` (admin/host-change-signature.ts) is applied only if its
 * `at` is later than that of every one of its project applied to the host before it, so a message
 * seen on the bus and sent again within its minute neither repeats nor undoes a later change. One
 * project's commands never hold back another's; a change that failed records nothing.
 */
import { Effect } from "effect"
import { query, type Sql } from "./database.ts"

/** Whether a command of `project` for `host` signed at `at` is newer than every one applied. */
export const isNewestHostCommand = (sql: Sql, project: string, host: string, at: number) =>
  query(() =>
    sql`select 1 from hamlet_signed_host_changes
        where project = ${project} and host = ${host} and signed_at >= ${at}`
  ).pipe(Effect.map((rows) => rows.length === 0))

/** Records that a command of `project` for `host` signed at `at` was applied (the newest wins). */
export const recordHostCommand = (sql: Sql, project: string, host: string, at: number) =>
  query(() =>
    sql`insert into hamlet_signed_host_changes (project, host, signed_at) values (${project}, ${host}, ${at})
        on conflict (project, host) do update
          set signed_at = greatest(hamlet_signed_host_changes.signed_at, excluded.signed_at)`
  ).pipe(Effect.asVoid)
