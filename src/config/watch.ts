/**
 * Watches config.json and the project folders (hosts/ appear and disappear there) and
 * emits one signal per burst of changes (debounced), so the supervisor reloads once.
 *
 * A file is watched through its folder (an editor or a deploy that saves by renaming a new
 * file over it replaces the file a watch would hold), and a path that does not exist yet
 * through its nearest folder that does. After each burst the watches are set up again on
 * what exists then, so a hosts/ folder created later is watched from then on.
 */
import { Duration, Effect, Stream } from "effect"
import { existsSync, statSync } from "node:fs"
import { basename, dirname, resolve, sep } from "node:path"

interface Watch {
  readonly dir: string
  readonly isRecursive: boolean
  /** Whether a change at this path is one the caller asked about. */
  readonly isWanted: (path: string) => boolean
}

/** How `path` is watched: itself when it is a folder, else through its nearest existing folder. */
const _watchFor = (path: string): Watch | undefined => {
  const target = resolve(path)
  if (existsSync(target) && statSync(target).isDirectory()) {
    return { dir: target, isRecursive: true, isWanted: () => true }
  }
  let dir = dirname(target)
  while (!existsSync(dir)) {
    if (dirname(dir) === dir) return undefined
    dir = dirname(dir)
  }
  // the first path segment below `dir` on the way to the target: its creation, removal or rename
  const step = target.slice(dir.length).split(sep).find((s) => s !== "") ?? basename(target)
  const watched = resolve(dir, step)
  return {
    dir,
    isRecursive: false,
    isWanted: (p) => p === watched || p.startsWith(watched + sep),
  }
}

/** One burst of changes under `paths`, from watches set up on what exists now. */
const _nextBurst = (paths: ReadonlyArray<string>, debounce: Duration.Duration): Stream.Stream<void> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const watches = paths.map(_watchFor).filter((w) => w !== undefined)
      if (watches.length === 0) return Stream.never
      const streams = yield* Effect.forEach(watches, (w) =>
        Effect.map(
          Effect.acquireRelease(
            Effect.sync(() => Deno.watchFs(w.dir, { recursive: w.isRecursive })),
            (watcher) => Effect.sync(() => watcher.close()),
          ),
          (watcher) =>
            Stream.fromAsyncIterable(watcher, (e) => e).pipe(
              Stream.filter((event) => event.kind !== "access" && event.paths.some(w.isWanted)),
            ),
        ))
      return Stream.mergeAll(streams, { concurrency: "unbounded" }).pipe(
        Stream.map(() => undefined),
        Stream.debounce(debounce),
        Stream.take(1),
      )
    }),
  ).pipe(
    Stream.catchCause((cause) =>
      Stream.fromEffect(
        Effect.logWarning("watching config and host folders failed; watching again in 1 s", cause).pipe(
          Effect.andThen(Effect.sleep(Duration.seconds(1))),
        ),
      ).pipe(Stream.drain)
    ),
  )

/** Changes under `paths`, debounced, for as long as the stream runs. */
export const watchPaths = (
  paths: ReadonlyArray<string>,
  debounce = Duration.millis(300),
): Stream.Stream<void> => Stream.forever(_nextBurst(paths, debounce))
