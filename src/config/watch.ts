/**
 * Watches config.json and the project folders (hosts/ appear and disappear there) and
 * emits one signal per burst of changes (debounced), so the supervisor reloads once.
 */
import { Duration, Effect, Stream } from "effect"
import { existsSync } from "node:fs"

/** Changes under `paths`, debounced; paths that do not exist are skipped. */
export const watchPaths = (
  paths: ReadonlyArray<string>,
  debounce = Duration.millis(300),
): Stream.Stream<void> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const existing = paths.filter((p) => existsSync(p))
      if (existing.length === 0) return Stream.empty
      const watcher = yield* Effect.acquireRelease(
        Effect.sync(() => Deno.watchFs(existing, { recursive: true })),
        (w) => Effect.sync(() => w.close()),
      )
      return Stream.fromAsyncIterable(watcher, (e) => e).pipe(
        Stream.filter((event) => event.kind !== "access"),
        Stream.map(() => undefined),
        Stream.debounce(debounce),
        Stream.catchCause(() => Stream.empty),
      )
    }),
  )
