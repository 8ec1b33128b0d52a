/**
 * Per-project scheduled events as fleet-wide jobs: the node that claims a period sends the
 * schedule's command to every host of the project over the bus, like any other caller,
 * with an idempotency key per (schedule, period) — so each host runs it once per period, and
 * what it emits is in that host's log. A host the command did not reach (no responder, a
 * timeout, overloaded) leaves the period unfinished, so it is sent again (the key makes that
 * safe); a host that answered with an error is logged, not retried.
 */
import { Effect } from "effect"
import type { Bus } from "../bus/bus.ts"
import { decodeText, encodeJson, type Reply } from "../bus/envelope.ts"
import { requestSubject } from "../bus/subjects.ts"
import type { RoutingTable } from "../ingress/routing.ts"
import type { LoadedProject } from "../projects/loader.ts"
import type { LoadedSchedule } from "../projects/schedules.ts"
import { makeTargetFailures, type ScheduledJob } from "./job.ts"

/** Reply codes after which the host may not have run the command: the period is tried again. */
const RETRIED_CODES: ReadonlySet<string> = new Set(["overloaded", "timeout"])

/** The job for one schedule of `project`; it resolves to the number of hosts that ran it. */
export const projectScheduleJob = (
  bus: Bus["Service"],
  routing: () => RoutingTable,
  project: LoadedProject,
  schedule: LoadedSchedule,
): ScheduledJob => {
  const name = `${project.name}.${schedule.name}`
  return {
    name,
    every: schedule.every,
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
        // a host the command did not reach is logged and recorded, and fails the run in the end
        const undelivered = makeTargetFailures(
          name,
          "scheduled command not delivered; the period will be retried",
        )
        const replies = yield* Effect.forEach(hosts, ({ host }) =>
          undelivered.attempt(
            host,
            bus.request(requestSubject(project.name, host, schedule.command), encodeJson(envelope()), {
              timeoutMs: project.limits.handlerTimeoutMs + 1_000,
            }).pipe(
              Effect.map((reply) => JSON.parse(decodeText(reply.data)) as Reply),
              Effect.flatMap((reply) => {
                if (reply.ok) return Effect.succeed(true)
                // busy or too slow: the host may not have run it; the key makes a retry safe
                if (RETRIED_CODES.has(reply.error.code)) return Effect.fail(reply.error.message)
                return Effect.logWarning("scheduled command failed", { name, host, error: reply.error }).pipe(
                  Effect.as(false),
                )
              }),
            ),
          ), { concurrency: 8 })
        return yield* undelivered.settle(replies.filter(Boolean).length)
      }),
  }
}
