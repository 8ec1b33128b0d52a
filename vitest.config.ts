import { defineConfig } from "vitest/config"

// one subject root per test run, so runs sharing a NATS server never meet
const subjectRoot = `hamlet_t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    fileParallelism: false,
    env: { HAMLET_SUBJECT_ROOT: process.env.HAMLET_SUBJECT_ROOT ?? subjectRoot },
  },
})
