/**
 * Watches config.json and the project folders (hosts/ appear and disappear there) and
 * emits one signal per burst of changes (debounced), so the supervisor reloads once.
 *
 * A file is watched through its folder (an editor or a deploy that saves by renaming a new
 * file over it replaces the file a watch would hold), and a path that does not exist yet
 * through its nearest folder that does. After each burst the watches are set up again on
 * what exists then — the new ones before the old ones close — so a hosts/ folder created
 * later is watched from then on. Changes are queued as they come, whatever the consumer is
 * doing: a change made during a reload makes another reload.
 */
import { Duration, Effect, Exit, Queue, Scope, Stream } from "effect"
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

/** Changes under `paths`, debounced, for as long as the stream runs. */
export const watchPaths = (
  paths: ReadonlyArray<string>,
  debounce = Duration.millis(300),
): Stream.Stream<void> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const changes = yield* Queue.unbounded<void>()
      const outer = yield* Scope.Scope
      let current: Scope.Closeable | undefined
      /** Watches what exists now; the previous watches close once the new ones are open. */
      const arm = Effect.gen(function* () {
        const scope = yield* Scope.fork(outer)
        for (const watch of paths.map(_watchFor)) {
          if (!watch) continue
          const watcher = Deno.watchFs(watch.dir, { recursive: watch.isRecursive })
          yield* Scope.addFinalizer(scope, Effect.sync(() => watcher.close()))
          yield* Stream.fromAsyncIterable(watcher, (e) => e).pipe(
            Stream.filter((event) => event.kind !== "access" && event.paths.some(watch.isWanted)),
            Stream.runForEach(() => Queue.offer(changes, undefined)),
            Effect.catchCause((cause) => Effect.logWarning("a config or host folder watch failed", cause)),
            Effect.forkIn(scope),
          )
        }
        const previous = current
        current = scope
        if (previous) yield* Scope.close(previous, Exit.void)
      }).pipe(
        Effect.catchCause((cause) => Effect.logWarning("watching config and host folders failed", cause)),
      )
      yield* arm
      const bursts = Stream.fromQueue(changes).pipe(Stream.debounce(debounce))
      // each burst is passed on and re-arms the watches (the structure under them may have changed)
      return bursts.pipe(Stream.tap(() => arm))
    }),
  )
