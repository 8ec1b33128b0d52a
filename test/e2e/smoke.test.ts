import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestServer, type TestServer } from "../support/server.ts"

describe("smoke on embedded defaults", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(() => server?.close())

  it("SubmitItem then GetFeed shows the item on its host only", async () => {
    const res = await server.call("blog.example.com", "/api/SubmitItem", {
      method: "POST",
      body: JSON.stringify({ title: "Hi" }),
    })
    expect(res.status).toBe(200)
    const { id } = await res.json()
    const feed = await (await server.call("blog.example.com", "/api/GetFeed")).json()
    expect(feed.items.map((i: { id: string }) => i.id)).toEqual([id])
    const other = await (await server.call("news.example.com", "/api/GetFeed")).json()
    expect(other.items).toEqual([])
  })
})
