/**
 * The newest signed host command applied per host (`hamlet_host_commands`): a signed `add` or
 * `remove` on `<root>.ctl.hosts` (admin/host-change-signature.ts) is applied only if its `at` is
 * later than every one applied to the host before it, so a message seen on the bus and sent again
 * within its minute neither repeats nor undoes a later change.
 */
import { Effect } from "effect"
import { query, type Sql } from "./database.ts"

/**
 * Records `at` as `host`'s newest signed command, in one statement across the fleet; false when a
 * command as new or newer was applied already (this one is a replay, or arrived after it).
 */
export const claimHostCommand = (sql: Sql, host: string, at: number) =>
  query(() =>
    sql`insert into hamlet_host_commands (host, signed_at) values (${host}, ${at})
        on conflict (host) do update set signed_at = excluded.signed_at
          where hamlet_host_commands.signed_at < excluded.signed_at
        returning host`
  ).pipe(Effect.map((rows) => rows.length === 1))
