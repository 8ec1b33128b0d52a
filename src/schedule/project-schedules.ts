/**
 * Per-project scheduled events as fleet-wide jobs: the node that claims a period sends the
 * schedule's command to every host of the project over the bus, like any other caller,
 * with an idempotency key per (schedule, period) — so each host runs it at most once per
 * period, and what it emits is in that host's log.
 */
import { Duration, Effect } from "effect"
import type { Bus } from "../bus/bus.ts"
import { decodeText, encodeJson, type Reply } from "../bus/envelope.ts"
import { requestSubject } from "../bus/subjects.ts"
import type { RoutingTable } from "../ingress/routing.ts"
import type { LoadedProject } from "../projects/loader.ts"
import type { ProjectSchedule } from "../projects/project.ts"
import type { ScheduledJob } from "./scheduler.ts"

/** The job for one schedule of `project`; it resolves to the number of hosts that ran it. */
export const projectScheduleJob = (
  bus: Bus["Service"],
  routing: () => RoutingTable,
  project: LoadedProject,
  schedule: ProjectSchedule,
): ScheduledJob => {
  const name = `${project.name}.${schedule.name}`
  return {
    name,
    every: Duration.fromInputUnsafe(schedule.every),
    run: (period) =>
      Effect.gen(function* () {
        const hosts = [...routing().routes.values()].filter((r) => r.project.name === project.name)
        const envelope = () => ({
          id: crypto.randomUUID(),
          input: { period: period.toISOString() },
          meta: {
            idempotencyKey: `schedule:${name}:${period.toISOString()}`,
            causationId: `schedule:${name}`,
          },
        })
        const replies = yield* Effect.forEach(hosts, ({ host }) =>
          bus.request(requestSubject(project.name, host, schedule.command), encodeJson(envelope()), {
            timeoutMs: project.limits.handlerTimeoutMs + 1_000,
          }).pipe(
            Effect.map((reply) =>
              (JSON.parse(decodeText(reply.data)) as Reply).ok
            ),
            Effect.tap((ok) =>
              ok ? Effect.void : Effect.logWarning("scheduled command failed", { name, host })
            ),
            Effect.catch((error) =>
              Effect.logWarning("scheduled command not delivered", { name, host, error }).pipe(
                Effect.as(false),
              )
            ),
          ), { concurrency: 8 })
        return replies.filter(Boolean).length
      }),
  }
}
