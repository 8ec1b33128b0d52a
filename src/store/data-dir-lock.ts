/**
 * One process at a time on an embedded data directory: an exclusive OS lock (flock) on
 * `<dir>.lock`, taken before PGlite opens the directory and held until it closed. Two PGlite
 * instances on one directory each keep their own copy in memory and the last to close
 * overwrites the other's writes; the lock refuses the second instead. The OS drops the lock
 * when its process dies, so a crash never leaves a stale lock that blocks the next start.
 */
import { Schema } from "effect"
import { basename, dirname, join, resolve } from "node:path"

export class DataDirInUse extends Schema.TaggedError<DataDirInUse>()("DataDirInUse", {
  dataDir: Schema.String,
  message: Schema.String,
}) {}

export interface DataDirLock {
  readonly path: string
  /** Drops the lock (closing the file drops it too); a second call does nothing. */
  readonly release: () => void
}

/** The lock file of `dataDir`: beside it, not inside it, as the directory is PGlite's alone. */
export const dataDirLockPath = (dataDir: string): string => {
  const dir = resolve(dataDir)
  return join(dirname(dir), `${basename(dir)}.lock`)
}

/**
 * Takes the exclusive lock on `dataDir` without waiting: rejects with DataDirInUse when
 * another process (or another open of it in this one) holds it. The holder's pid is written
 * in the file for that message only; the lock itself is the OS's, never the file's content.
 */
export const lockDataDir = async (dataDir: string): Promise<DataDirLock> => {
  const path = dataDirLockPath(dataDir)
  const file = await Deno.open(path, { read: true, write: true, create: true })
  let isLocked: boolean
  try {
    isLocked = await file.tryLock(true)
  } catch (e) {
    file.close()
    throw e
  }
  if (!isLocked) {
    file.close()
    const holder = await Deno.readTextFile(path).then((t) => t.trim(), () => "")
    throw new DataDirInUse({
      dataDir,
      message: `the embedded store ${dataDir} is open by another process ` +
        `(${/^\d+$/.test(holder) ? `pid ${holder}, ` : ""}holding ${path}), a server or a replay ` +
        `command: one process at a time opens a data directory`,
    })
  }
  await file.truncate(0)
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`))
  let isReleased = false
  return {
    path,
    release: () => {
      if (isReleased) return
      isReleased = true
      file.close()
    },
  }
}
