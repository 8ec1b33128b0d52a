import { createHash } from "node:crypto"
import { describe, expect, it } from "vitest"
import { makeChainVerifier } from "../../src/audit/chain.ts"
import { encodeEventLine, hashedFields, type LinkedEvent } from "../../src/audit/event-line.ts"
import { verifyLines } from "../../src/audit/verify-file.ts"
import { eventHash, GENESIS_HASH } from "../../src/store/event-hash.ts"
import type { StoredEvent } from "../../src/store/event-log.ts"

/** A valid chain of `n` events for one host, as appendEvents would store them. */
const chainOf = (n: number, host = "blog.example.com"): Array<StoredEvent> => {
  const events: Array<StoredEvent> = []
  let prev = GENESIS_HASH
  for (let seq = 1; seq <= n; seq++) {
    const fields = {
      host,
      seq,
      project: "horatio",
      stream: `item-${seq % 3}`,
      version: Math.ceil(seq / 3),
      type: "ItemSubmitted",
      data: { id: String(seq), title: `t${seq}`, tags: ["a"], nested: { z: 1, a: [1, 2] } },
      meta: { requestId: `r${seq}` },
      recordedAt: new Date(1_700_000_000_000 + seq).toISOString(),
    }
    prev = eventHash(prev, fields)
    events.push({ ...fields, recordedAt: new Date(fields.recordedAt), hash: prev })
  }
  return events
}

describe("the chain's hash, as an outside auditor computes it", () => {
  it("is sha256 of the previous hash followed by the event as JSON with sorted keys, no spacing", () => {
    const event = {
      host: "blog.example.com",
      seq: 7,
      project: "horatio",
      stream: "item-1",
      version: 2,
      type: "ItemSubmitted",
      data: {
        title: 'Ünïcode "q"',
        tags: ["b", "a"],
        n: 1.5,
        none: null,
        nested: { z: true, a: [{ y: 1, x: 2 }] },
      },
      meta: { requestId: "r7", correlationId: "c" },
      recordedAt: "2026-01-02T03:04:05.678Z",
    }
    // written out by hand: the form documented in the README, independent of the implementation
    const canonical = `{"data":{"n":1.5,"nested":{"a":[{"x":2,"y":1}],"z":true},"none":null,` +
      `"tags":["b","a"],"title":"Ünïcode \\"q\\""},"host":"blog.example.com",` +
      `"meta":{"correlationId":"c","requestId":"r7"},"project":"horatio",` +
      `"recordedAt":"2026-01-02T03:04:05.678Z","seq":7,"stream":"item-1","type":"ItemSubmitted","version":2}`
    const expected = createHash("sha256").update(GENESIS_HASH + canonical).digest("hex")
    expect(eventHash(GENESIS_HASH, event)).toBe(expected)
  })
})

/** The events as an export now writes them: each with the hash it links to. */
const linked = (events: ReadonlyArray<StoredEvent>): Array<LinkedEvent> =>
  events.map((e, i) => ({ ...e, prevHash: i === 0 ? GENESIS_HASH : events[i - 1].hash }))

const verify = (events: ReadonlyArray<StoredEvent>, fromSeq?: number) => {
  const verifier = makeChainVerifier({ host: "blog.example.com", fromSeq })
  for (const e of events) verifier.push(hashedFields(e), e.hash)
  return verifier.report()
}

const fromText = async function* (text: string) {
  // split into odd-sized chunks so line reassembly is exercised
  for (let i = 0; i < text.length; i += 37) yield text.slice(i, i + 37)
}

describe("chain verifier", () => {
  it("accepts an intact chain and reports its head", () => {
    const events = chainOf(10)
    const report = verify(events)
    expect(report.breaks).toEqual([])
    expect(report).toMatchObject({ events: 10, firstSeq: 1, lastSeq: 10, headHash: events[9].hash })
  })

  it("reports a tampered event at its seq and only there", () => {
    const events = chainOf(10)
    events[4] = { ...events[4], data: { ...(events[4].data as object), title: "evil" } }
    expect(verify(events).breaks.map((b) => [b.seq, b.kind])).toEqual([[5, "tampered"]])
  })

  it("reports a deleted event as missing at the first absent seq", () => {
    const events = chainOf(10).filter((e) => e.seq !== 6)
    expect(verify(events).breaks.map((b) => [b.seq, b.kind])).toEqual([[6, "missing"]])
  })

  it("reports an edited hash at that seq", () => {
    const events = chainOf(5)
    events[2] = { ...events[2], hash: "f".repeat(64) }
    expect(verify(events).breaks[0]).toMatchObject({ seq: 3, kind: "tampered" })
  })

  it("reports another host's event", () => {
    const events = chainOf(3)
    const foreign = chainOf(4, "news.example.com")[3]
    expect(verify([...events, foreign]).breaks[0]).toMatchObject({ seq: 4, kind: "foreign" })
  })

  it("anchors a partial export on its first event and checks the rest", () => {
    const report = verify(chainOf(10).slice(3))
    expect(report).toMatchObject({ anchoredAt: 4, breaks: [] })
  })
})

describe("chain verifier from a known first seq", () => {
  it("from seq 1, reports the log's deleted first events as missing from seq 1", () => {
    const report = verify(chainOf(10).slice(2), 1)
    expect(report.breaks.map((b) => [b.seq, b.kind, b.message])).toEqual([
      [1, "missing", "seq 1..2 are missing (deleted events?)"],
    ])
    expect(report.anchoredAt).toBeUndefined()
  })

  it("from seq 1, holds the first event to the genesis hash", () => {
    const [first, ...rest] = chainOf(3)
    const forged = { ...first, hash: eventHash("f".repeat(64), hashedFields(first)) }
    expect(verify([forged, ...rest], 1).breaks.map((b) => [b.seq, b.kind])).toEqual([
      [1, "tampered"],
      [2, "tampered"],
    ])
  })

  it("from a later seq, anchors on that event and reports a file that starts past it", () => {
    expect(verify(chainOf(10).slice(3), 4)).toMatchObject({ anchoredAt: 4, breaks: [] })
    expect(verify(chainOf(10).slice(5), 4).breaks.map((b) => [b.seq, b.kind])).toEqual([[4, "missing"]])
    expect(verify(chainOf(10).slice(1), 4).breaks.map((b) => [b.seq, b.kind])).toEqual([[2, "unordered"]])
  })
})

describe("verifyLines() on an NDJSON export", () => {
  it("accepts an exported file whatever the chunking", async () => {
    const text = chainOf(25).map(encodeEventLine).join("")
    const report = await verifyLines(fromText(text))
    expect(report).toMatchObject({ events: 25, breaks: [], badLines: [] })
  })

  it("finds a tampered line", async () => {
    const lines = chainOf(5).map(encodeEventLine)
    lines[1] = lines[1].replace('"t2"', '"t2!"')
    expect((await verifyLines(fromText(lines.join("")))).breaks[0]).toMatchObject({
      seq: 2,
      kind: "tampered",
    })
  })

  it("reports a file that starts later than the seq it was taken from", async () => {
    const text = chainOf(5).slice(1).map(encodeEventLine).join("")
    expect(await verifyLines(fromText(text))).toMatchObject({ anchoredAt: 2, breaks: [] })
    expect((await verifyLines(fromText(text), { fromSeq: 1 })).breaks[0]).toMatchObject({
      seq: 1,
      kind: "missing",
    })
  })

  it("reports a line that is not an event", async () => {
    const lines = chainOf(3).map(encodeEventLine)
    const report = await verifyLines(fromText(`${lines[0]}{"seq":"x"}\n${lines[1]}${lines[2]}`))
    expect(report.badLines.map((b) => b.line)).toEqual([2])
  })
})

describe("verifyLines() on a partial export whose lines carry prevHash", () => {
  const partial = () => linked(chainOf(14)).slice(9).map(encodeEventLine)

  it("checks the first event against its prevHash and names that hash as the one to compare", async () => {
    const report = await verifyLines(fromText(partial().join("")))
    expect(report).toMatchObject({ anchoredAt: 10, anchorHash: chainOf(9)[8].hash, breaks: [], badLines: [] })
  })

  it("finds the first event's content edited, though its own hash is the live log's", async () => {
    const lines = partial()
    lines[0] = lines[0].replace('"title":"t10"', '"title":"forged"')
    const report = await verifyLines(fromText(lines.join("")))
    expect(report.badLines).toEqual([])
    expect(report.breaks.map((b) => [b.seq, b.kind])).toEqual([[10, "tampered"]])
  })

  it("finds a prevHash that is not the previous event's hash", async () => {
    const lines = partial()
    lines[2] = lines[2].replace(/"prevHash":"[0-9a-f]{64}"/, `"prevHash":"${"e".repeat(64)}"`)
    const report = await verifyLines(fromText(lines.join("")))
    expect(report.breaks.map((b) => [b.seq, b.kind, b.message])).toEqual([
      [12, "tampered", "seq 12: its prevHash is not the hash of seq 11"],
    ])
  })

  it("still verifies a file exported without prevHash, its first event unchecked", async () => {
    const lines = chainOf(14).slice(9).map(encodeEventLine)
    expect(lines[0]).not.toContain("prevHash")
    const report = await verifyLines(fromText(lines.join("")))
    expect(report).toMatchObject({ anchoredAt: 10, anchorHash: undefined, breaks: [] })
  })
})
