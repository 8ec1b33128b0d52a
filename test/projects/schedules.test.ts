/**
 * A project's schedules are checked at load: a period of zero, a negative or unreadable one,
 * or one under 100 ms never loads (before, "0 seconds" loaded and silently never ran, and a
 * negative period spun against the store), nor do two schedules of one name.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { loadProject } from "../../src/projects/loader.ts"
import { MOD, writeTempProject } from "../support/temp-project.ts"

const withSchedules = (schedules: string) =>
  writeTempProject({
    name: "ticking",
    hosts: [],
    projectTs: `import { Schema } from "effect"
import { defineEvent, defineProject } from ${MOD}
export const Ticked = defineEvent("Ticked", Schema.Struct({ period: Schema.String }), () => "ticks")
export default defineProject({ name: "ticking", events: [Ticked], schedules: ${schedules} })
`,
    api: {
      Tick: `import { Effect, Schema } from "effect"
import { defineCommand } from ${MOD}
import { Ticked } from "../project.ts"
export default defineCommand({
  name: "Tick", input: Schema.Struct({ period: Schema.String }), output: Schema.Struct({ ok: Schema.Boolean }),
  handle: (input, ctx) => ctx.emit(Ticked, input).pipe(Effect.as({ ok: true })),
})
`,
    },
  })

/** What loading a project with these schedules says: its load error, or "loaded". */
const loading = async (schedules: string): Promise<string> => {
  const temp = await withSchedules(schedules)
  try {
    return await Effect.runPromise(
      loadProject(temp.dir, undefined).pipe(
        Effect.as("loaded"),
        Effect.catchTag("ProjectLoadError", (e) => Effect.succeed(e.message)),
      ),
    )
  } finally {
    await temp.remove()
  }
}

describe("project schedules at load", () => {
  it("a period that could never run, or would spin, fails the load naming the schedule", async () => {
    expect(await loading(`[{ name: "Beat", every: "0 seconds", command: "Tick" }]`)).toBe(
      "schedule Beat: every 0 is shorter than 100ms",
    )
    expect(await loading(`[{ name: "Beat", every: -5000, command: "Tick" }]`)).toMatch(
      /^schedule Beat: every .* (is shorter than 100ms|is not a period)$/,
    )
    expect(await loading(`[{ name: "Beat", every: "daily", command: "Tick" }]`)).toBe(
      `schedule Beat: every "daily" is not a period`,
    )
    expect(await loading(`[{ name: "Beat", every: "10 millis", command: "Tick" }]`)).toBe(
      "schedule Beat: every 10ms is shorter than 100ms",
    )
    expect(await loading(`[{ name: "Beat", every: 1e300, command: "Tick" }]`)).toMatch(
      /^schedule Beat: every .* is longer than 366d$/,
    )
  })

  it("two schedules of one name fail the load; a command that is not one still does", async () => {
    expect(
      await loading(
        `[{ name: "Beat", every: "1 minute", command: "Tick" }, { name: "Beat", every: "1 hour", command: "Tick" }]`,
      ),
    ).toBe("two schedules are named Beat")
    expect(await loading(`[{ name: "Beat", every: "1 minute", command: "Nope" }]`)).toBe(
      "schedule Beat names Nope, which is not a command here",
    )
  })

  it("a period of 100 ms or more loads", async () => {
    expect(await loading(`[{ name: "Beat", every: "300 millis", command: "Tick" }]`)).toBe("loaded")
    expect(await loading(`[{ name: "Beat", every: "1 hour", command: "Tick" }]`)).toBe("loaded")
  })
})
