import { profileDuring } from "./bench/profile.ts"
const port = 9339
const p = new Deno.Command("deno", { args: ["run", "-A", `--inspect=127.0.0.1:${port}`, "src/main.ts"], env: { DATABASE_URL: "postgres://postgres@127.0.0.1:5432/hamlet_lat", NATS_URL: "nats://127.0.0.1:4222", PORT: "8934", HAMLET_DATA: Deno.makeTempDirSync() }, stdout: "null", stderr: "null" }).spawn()
await new Promise((r) => setTimeout(r, 6000))
const conns = Deno.args[0] ?? "1"
const s = await profileDuring(port, `c${conns}`, () => new Deno.Command("wrk", { args: ["-t1", `-c${conns}`, "-d5s", "-s", Deno.env.get("LUA") ?? "/tmp/prof/feed.lua", "http://127.0.0.1:8934"], stdout: "inherit" }).output())
console.log(JSON.stringify(s.byArea))
p.kill("SIGTERM"); await p.status
