/**
 * Watches config.json and the project folders (hosts/ appear and disappear there) and
 * emits one signal per burst of changes (debounced), so the supervisor reloads once.
 *
 * A file is watched through its folder (an editor or a deploy that saves by renaming a new
 * file over it replaces the file a watch would hold), and a path that does not exist yet
 * through its nearest folder that does. A file reached through symlinks is also watched at
 * each of them and where they lead: a Kubernetes ConfigMap volume updates `config.json ->
 * ..data/config.json` by re-pointing `..data` at a new folder, which names neither
 * config.json nor its folder. After each burst, and when the caller changes the paths, the watches
 * are set up again on what exists then — new ones before old ones close, a folder watched already
 * kept on its watch — so a hosts/ folder created (or a symlink re-pointed) later is watched from
 * then on. Changes are queued as they come, whatever the consumer is doing, in one queue for the
 * watch's lifetime, also across `setPaths`: a change made during a reload makes another reload.
 */
import { Duration, Effect, Exit, Queue, Scope, Semaphore, Stream } from "effect"
import { existsSync, lstatSync, readlinkSync, statSync } from "node:fs"
import { basename, dirname, join, parse, resolve, sep } from "node:path"

interface Watch {
  readonly dir: string
  readonly isRecursive: boolean
  /** Whether a change at this path is one the caller asked about. */
  readonly isWanted: (path: string) => boolean
}

/** A watch of `path` through its nearest existing folder: its creation, removal, rename or edit. */
const _watchThroughFolder = (path: string): Watch | undefined => {
  const target = resolve(path)
  let dir = dirname(target)
  while (!existsSync(dir)) {
    if (dirname(dir) === dir) return undefined
    dir = dirname(dir)
  }
  // the first path segment below `dir` on the way to the target
  const step = target.slice(dir.length).split(sep).find((s) => s !== "") ?? basename(target)
  const watched = resolve(dir, step)
  return {
    dir,
    isRecursive: false,
    isWanted: (p) => p === watched || p.startsWith(watched + sep),
  }
}

const _isSymlink = (path: string) => {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false // missing, or below a file: nothing to follow
  }
}

const _readLink = (path: string) => {
  try {
    return readlinkSync(path)
  } catch {
    return undefined
  }
}

/**
 * The paths a lookup of `path` goes through that a change can re-point: each symlink on the way
 * (a ConfigMap's `config.json` and `..data`) and the path it ends at. Just `path` without symlinks.
 */
const _lookupPaths = (path: string): ReadonlyArray<string> => {
  const visited: Array<string> = []
  let pending = resolve(path)
  // the kernel's bound too: a symlink loop ends here
  for (let hops = 0; hops < 40; hops++) {
    const parts = pending.split(sep).filter((s) => s !== "")
    let prefix = parse(pending).root
    let link: string | undefined
    let rest: ReadonlyArray<string> = []
    for (const [i, part] of parts.entries()) {
      prefix = join(prefix, part)
      if (!_isSymlink(prefix)) continue
      link = prefix
      rest = parts.slice(i + 1)
      break
    }
    if (link === undefined) break
    visited.push(link)
    const next = _readLink(link)
    if (next === undefined) return visited // re-pointed or removed meanwhile: the next burst looks again
    pending = resolve(dirname(link), next, ...rest)
  }
  visited.push(pending)
  return visited
}

/** How `path` is watched: itself when it is a folder, else through the folders its lookup goes through. */
const _watchesFor = (path: string): ReadonlyArray<Watch> => {
  const target = resolve(path)
  if (existsSync(target) && statSync(target).isDirectory()) {
    return [{ dir: target, isRecursive: true, isWanted: () => true }]
  }
  const paths = [...new Set([target, ..._lookupPaths(target)])]
  return paths.flatMap((p) => _watchThroughFolder(p) ?? [])
}

/** The watches for `paths`, one per folder and kind (a folder holding config.json and its symlinks). */
const _watchesForAll = (paths: ReadonlyArray<string>): ReadonlyArray<Watch> => {
  const byFolder = new Map<string, Array<Watch>>()
  for (const watch of paths.flatMap(_watchesFor)) {
    const key = `${watch.isRecursive}:${watch.dir}`
    byFolder.set(key, [...byFolder.get(key) ?? [], watch])
  }
  return [...byFolder.values()].map((watches) => ({
    dir: watches[0].dir,
    isRecursive: watches[0].isRecursive,
    isWanted: (p) => watches.some((w) => w.isWanted(p)),
  }))
}

interface _OpenWatch {
  readonly scope: Scope.Closeable
  /** Replaced when a re-arm keeps this watch for other paths in the same folder. */
  isWanted: (path: string) => boolean
}

/** Which folder a watch is of: its path and the folder there now (a folder removed and made again is another). */
const _folderIdentity = (watch: Watch): string => {
  const { dev, ino } = statSync(watch.dir)
  return `${watch.isRecursive}:${dev}:${ino}:${watch.dir}`
}

/** A watch of some paths that the caller may change while it runs. */
export interface PathWatch {
  /** One signal per burst of changes (debounced), for as long as the watch's scope is open. Run it once. */
  readonly changes: Stream.Stream<void>
  /**
   * Watches `paths` from now on, in place of the previous ones, keeping what is queued. When it adds a
   * path, one signal follows once that path is watched: the caller looked at it before, and a change
   * made since then would otherwise be missed.
   */
  readonly setPaths: (paths: ReadonlyArray<string>) => Effect.Effect<void>
}

/** Watches `paths` until the scope closes. */
export const makePathWatch = (
  paths: ReadonlyArray<string>,
  debounce = Duration.millis(300),
): Effect.Effect<PathWatch, never, Scope.Scope> =>
  Effect.gen(function* () {
    const changes = yield* Queue.unbounded<void>()
    const outer = yield* Scope.Scope
    // arming after a burst and `setPaths` take turns: the last paths set are the ones watched
    const lock = yield* Semaphore.make(1)
    let watched = [...paths]
    /** The open watches by folder: kept across re-arms while their folder is the same one. */
    let opened = new Map<string, _OpenWatch>()
    /** Opens a watch of `watch.dir` in a scope of its own. */
    const open = (watch: Watch) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(outer)
        const entry: _OpenWatch = { scope, isWanted: watch.isWanted }
        yield* Effect.gen(function* () {
          const watcher = Deno.watchFs(watch.dir, { recursive: watch.isRecursive })
          yield* Scope.addFinalizer(scope, Effect.sync(() => watcher.close()))
          yield* Stream.fromAsyncIterable(watcher, (e) => e).pipe(
            Stream.filter((event) => event.kind !== "access" && event.paths.some((p) => entry.isWanted(p))),
            Stream.runForEach(() => Queue.offer(changes, undefined)),
            Effect.catchCause((cause) => Effect.logWarning("a config or host folder watch failed", cause)),
            Effect.forkIn(scope),
          )
        }).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
        return entry
      })
    /**
     * Watches what exists now. A folder watched already stays watched by the same watch (a change it
     * has not delivered yet is not lost); a new or replaced folder gets a new watch, opened before the
     * watches no longer needed close. If that fails, the previous watches stay.
     */
    const arm = Effect.gen(function* () {
      const next = new Map<string, _OpenWatch>()
      const kept: Array<readonly [_OpenWatch, Watch]> = []
      const armed = Effect.gen(function* () {
        for (const watch of _watchesForAll(watched)) {
          const key = _folderIdentity(watch)
          const entry = opened.get(key)
          if (entry) kept.push([entry, watch])
          next.set(key, entry ?? (yield* open(watch)))
        }
      })
      const isArmed = yield* armed.pipe(
        Effect.as(true),
        Effect.catchCause((cause) =>
          Effect.logWarning("watching config and host folders failed", cause).pipe(
            Effect.andThen(Effect.forEach(
              [...next].filter(([key]) => !opened.has(key)),
              ([, entry]) => Scope.close(entry.scope, Exit.void),
            )),
            Effect.as(false),
          )
        ),
      )
      if (!isArmed) return
      for (const [entry, watch] of kept) entry.isWanted = watch.isWanted
      const previous = opened
      opened = next
      for (const [key, entry] of previous) {
        if (!next.has(key)) yield* Scope.close(entry.scope, Exit.void)
      }
    })
    yield* arm
    const setPaths = (paths: ReadonlyArray<string>) =>
      lock.withPermit(Effect.gen(function* () {
        if (paths.length === watched.length && paths.every((p, i) => p === watched[i])) return
        const isAdding = paths.some((p) => !watched.includes(p))
        watched = [...paths]
        yield* arm
        if (isAdding) yield* Queue.offer(changes, undefined)
      }))
    return {
      // each burst is passed on and re-arms the watches (the structure under them may have changed)
      changes: Stream.fromQueue(changes).pipe(
        Stream.debounce(debounce),
        Stream.tap(() => lock.withPermit(arm)),
      ),
      setPaths,
    }
  })

/** Changes under `paths`, debounced, for as long as the stream runs. */
export const watchPaths = (
  paths: ReadonlyArray<string>,
  debounce = Duration.millis(300),
): Stream.Stream<void> => Stream.unwrap(Effect.map(makePathWatch(paths, debounce), (watch) => watch.changes))
