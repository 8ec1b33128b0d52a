/**
 * A project's schedules as loaded: each names one of its commands, has a name of its own, and a
 * period from MIN_SCHEDULE_PERIOD to MAX_SCHEDULE_PERIOD. A period of zero or less, or one that
 * cannot be read, would never run (or spin against the store), and one of centuries would start
 * in 1970: the project does not load.
 */
import { Duration, Option } from "effect"
import type { Handler } from "./handler.ts"
import type { ProjectSchedule } from "./project.ts"

/** The shortest period a schedule may have: each period costs a claim in Postgres. */
export const MIN_SCHEDULE_PERIOD = Duration.millis(100)

/** The longest: a period start is a multiple of it since 1970, and each is claimed until it ends. */
export const MAX_SCHEDULE_PERIOD = Duration.days(366)

/** A schedule whose period is read. */
export interface LoadedSchedule extends ProjectSchedule {
  readonly every: Duration.Duration
}

/** The schedules, with their periods read, or what is wrong with the first that is not right. */
export const loadSchedules = (
  schedules: ReadonlyArray<ProjectSchedule>,
  handlers: ReadonlyMap<string, Handler>,
): { readonly schedules: ReadonlyArray<LoadedSchedule> } | { readonly problem: string } => {
  const loaded: Array<LoadedSchedule> = []
  const names = new Set<string>()
  for (const schedule of schedules) {
    if (names.has(schedule.name)) return { problem: `two schedules are named ${schedule.name}` }
    names.add(schedule.name)
    if (handlers.get(schedule.command)?.kind !== "command") {
      return { problem: `schedule ${schedule.name} names ${schedule.command}, which is not a command here` }
    }
    const every = Duration.fromInput(schedule.every)
    if (Option.isNone(every) || !Duration.isFinite(every.value)) {
      return {
        problem: `schedule ${schedule.name}: every ${JSON.stringify(String(schedule.every))} is not a period`,
      }
    }
    if (Duration.isLessThan(every.value, MIN_SCHEDULE_PERIOD)) {
      return {
        problem: `schedule ${schedule.name}: every ${Duration.format(every.value)} is shorter than ${
          Duration.format(MIN_SCHEDULE_PERIOD)
        }`,
      }
    }
    if (Duration.isGreaterThan(every.value, MAX_SCHEDULE_PERIOD)) {
      return {
        problem: `schedule ${schedule.name}: every ${Duration.format(every.value)} is longer than ${
          Duration.format(MAX_SCHEDULE_PERIOD)
        }`,
      }
    }
    loaded.push({ ...schedule, every: every.value })
  }
  return { schedules: loaded }
}
