/**
 * watchPaths() and makePathWatch() as the supervisor uses them: a burst of changes is one signal,
 * a change made while the consumer is still handling the previous signal (a reload) is not lost —
 * also when the watched paths change meanwhile — and a file reached through symlinks is watched
 * where they lead.
 */
import { Duration, Effect, Exit, Fiber, Scope, Stream } from "effect"
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "vitest"
import { makePathWatch, watchPaths } from "../../src/config/watch.ts"
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

it("makePathWatch() keeps a change queued when its paths change, and signals for a path it adds", async () => {
  const root = await mkdtemp(join(tmpdir(), "hamlet-watch-"))
  const [a, b, c] = ["a", "b", "c"].map((name) => join(root, name, "hosts"))
  for (const dir of [a, b, c]) await mkdir(dir, { recursive: true })
  const scope = Effect.runSync(Scope.make())
  try {
    // a long debounce: the change is still queued when the paths change
    const watch = await Effect.runPromise(Scope.provide(makePathWatch([a, b], Duration.millis(1000)), scope))
    let signals = 0
    Effect.runSync(Effect.forkIn(Stream.runForEach(watch.changes, () => Effect.sync(() => signals++)), scope))
    await mkdir(join(a, "one.example.com"))
    await Effect.runPromise(watch.setPaths([a]))
    await until("a signal for the change made before the paths changed", () => signals === 1)
    // a path added may have changed since the caller looked at it: one signal once it is watched
    await Effect.runPromise(watch.setPaths([a, c]))
    await until("a signal for the path added", () => signals === 2)
    await mkdir(join(c, "two.example.com"))
    await until("a signal for a change under the path added", () => signals === 3)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await rm(root, { recursive: true })
  }
})

it("watchPaths() signals when a symlink on the way to a file is re-pointed (a ConfigMap update)", async () => {
  const root = await mkdtemp(join(tmpdir(), "hamlet-watch-"))
  // config.json -> ..data/config.json, ..data -> ..v1: as Kubernetes lays out a ConfigMap volume
  await mkdir(join(root, "..v1"))
  await mkdir(join(root, "..v2"))
  await writeFile(join(root, "..v1", "config.json"), "{}")
  await symlink("..v1", join(root, "..data"))
  await symlink("..data/config.json", join(root, "config.json"))
  let signals = 0
  const fiber = Effect.runFork(
    watchPaths([join(root, "config.json")], Duration.millis(100)).pipe(
      Stream.runForEach(() => Effect.sync(() => signals++)),
    ),
  )
  try {
    await writeFile(join(root, "..v2", "config.json"), '{"changed":true}')
    await symlink("..v2", join(root, "..data_tmp"))
    await rename(join(root, "..data_tmp"), join(root, "..data"))
    await until("a signal for the re-pointed ..data", () => signals >= 1)
    // watched where it leads now: an edit of the new version's file is seen too
    const seen = signals
    await writeFile(join(root, "..v2", "config.json"), '{"changed":"again"}')
    await until("a signal for an edit of the file ..data leads to now", () => signals > seen)
  } finally {
    await Effect.runPromise(Fiber.interrupt(fiber))
    await rm(root, { recursive: true })
  }
})
