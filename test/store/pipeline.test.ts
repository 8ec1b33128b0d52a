/**
 * The write pipeline of a command batch (src/store/pipeline.ts): statements go out at once,
 * or — held, for a batch chained behind one still committing — only at `release`, in the
 * order they were sent; `flush` fails with the first statement's error.
 */
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { makePipeline } from "../../src/store/pipeline.ts"

/** A lazy statement that records when it is executed. */
const statement = (log: Array<string>, name: string, fails = false) => ({
  execute: () => {
    log.push(name)
    return fails ? Promise.reject(new Error(`${name} failed`)) : Promise.resolve()
  },
})

describe("write pipeline", () => {
  it("sends statements at once when not held", () => {
    const log: Array<string> = []
    const pipeline = makePipeline()
    pipeline.send(statement(log, "a"))
    expect(log).toEqual(["a"])
  })

  it("holds statements until release, then sends them in order, and later ones at once", async () => {
    const log: Array<string> = []
    const pipeline = makePipeline({ held: true })
    pipeline.send(statement(log, "a"))
    pipeline.send(statement(log, "b"))
    expect(log).toEqual([])
    pipeline.release()
    expect(log).toEqual(["a", "b"])
    pipeline.send(statement(log, "c"))
    expect(log).toEqual(["a", "b", "c"])
    expect(Exit.isSuccess(await Effect.runPromiseExit(pipeline.flush))).toBe(true)
  })

  it("sends the statement given to release ahead of the held ones (a batch's events before its rows)", () => {
    const log: Array<string> = []
    const pipeline = makePipeline({ held: true })
    pipeline.send(statement(log, "row"))
    pipeline.release(statement(log, "events"))
    expect(log).toEqual(["events", "row"])
    expect(pipeline.isHeld()).toBe(false)
  })

  it("says whether every statement sent so far succeeded, once all are answered", async () => {
    const ok = makePipeline()
    ok.send(statement([], "a"))
    expect(await ok.succeeded()).toBe(true)
    const failed = makePipeline()
    failed.send(statement([], "a"))
    failed.send(statement([], "b", true))
    expect(await failed.succeeded()).toBe(false)
  })

  it("fails the flush with the first error", async () => {
    const log: Array<string> = []
    const pipeline = makePipeline({ held: true })
    pipeline.send(statement(log, "a", true))
    pipeline.send(statement(log, "b", true))
    pipeline.release()
    const exit = await Effect.runPromiseExit(pipeline.flush)
    expect(Exit.isFailure(exit) && String(exit.cause)).toContain("a failed")
  })
})
