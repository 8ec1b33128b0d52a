/**
 * The `Idempotency-Key` header over HTTP: a command sent again with the same key runs once and
 * gets the first answer; the key on other input is a conflict; a bad key is a 400; queries ignore it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestServer, type TestServer } from "../support/server.ts"

const HOST = "blog.example.com"

describe("Idempotency-Key", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(() => server?.close())

  const submit = (title: string, key?: string) =>
    server.call(HOST, "/api/SubmitItem", {
      body: JSON.stringify({ title }),
      headers: key === undefined ? {} : { "idempotency-key": key },
    })
  const itemsTitled = async (title: string) =>
    (await server.sql`select count(*)::int as n from hamlet_events
      where host = ${HOST} and type = 'ItemSubmitted' and data->>'title' = ${title}`)[0].n

  it("a command sent twice with one key runs once; both get the first answer", async () => {
    const first = await submit("once only", "key-once-1")
    const again = await submit("once only", '"key-once-1"')
    expect(first.status).toBe(200)
    expect(again.status).toBe(200)
    expect(await again.json()).toEqual(await first.json())
    expect(await itemsTitled("once only")).toBe(1)
  })

  it("the same key on other input is a 409; without a key each request runs", async () => {
    expect((await submit("first input", "key-reused-2")).status).toBe(200)
    const other = await submit("other input", "key-reused-2")
    expect(other.status).toBe(409)
    expect((await submit("no key")).status).toBe(200)
    expect((await submit("no key")).status).toBe(200)
    expect(await itemsTitled("no key")).toBe(2)
  })

  it("an empty or over-long key is a 400; a query ignores the header", async () => {
    expect((await submit("x", "")).status).toBe(400)
    expect((await submit("x", '""')).status).toBe(400)
    expect((await submit("x", "k".repeat(257))).status).toBe(400)
    expect(await itemsTitled("x")).toBe(0)
    const feed = await server.call(HOST, "/api/GetFeed", {
      method: "GET",
      headers: { "idempotency-key": "" },
    })
    expect(feed.status).toBe(200)
  })
})
