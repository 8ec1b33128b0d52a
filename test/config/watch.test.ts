/**
 * watchPaths() as the supervisor uses it: a burst of changes is one signal, and a change
 * made while the consumer is still handling the previous signal (a reload) is not lost.
 */
import { Duration, Effect, Fiber, Stream } from "effect"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "vitest"
import { watchPaths } from "../../src/config/watch.ts"
import { until } from "../support/eventually.ts"

it("watchPaths() signals a change made while the previous signal is being handled", async () => {
  const root = await mkdtemp(join(tmpdir(), "hamlet-watch-"))
  await mkdir(join(root, "proj", "hosts"), { recursive: true })
  await writeFile(join(root, "config.json"), "{}")
  let signals = 0
  const fiber = Effect.runFork(
    watchPaths([join(root, "config.json"), join(root, "proj", "hosts")], Duration.millis(100)).pipe(
      Stream.runForEach(() =>
        Effect.gen(function* () {
          signals++
          if (signals > 1) return
          // the first "reload" takes a while, and a deploy's second step lands meanwhile
          yield* Effect.promise(() => mkdir(join(root, "proj", "hosts", "new.example.com")))
          yield* Effect.sleep(Duration.millis(500))
        })
      ),
    ),
  )
  try {
    await new Promise((resolve) => setTimeout(resolve, 300))
    await writeFile(join(root, "config.json"), '{"changed":true}')
    await until("a signal for the change made during the first", () => signals >= 2)
  } finally {
    await Effect.runPromise(Fiber.interrupt(fiber))
    await rm(root, { recursive: true })
  }
  expect(signals).toBe(2)
})
