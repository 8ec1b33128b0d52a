/**
 * A log-bucketed latency histogram (HDR-style, ~1% relative precision) with fixed memory:
 * recording is O(1) and percentiles are read from the bucket counts, so a worker can
 * record millions of samples without keeping them.
 */

/** Bucket growth factor: each bucket is 1% wider than the last. */
const GROWTH = 1.01
const LOG_GROWTH = Math.log(GROWTH)
/** Smallest resolvable latency in microseconds; everything below lands in bucket 0. */
const MIN_US = 1
/** 1 µs … ~100 s at 1% steps. */
const BUCKETS = Math.ceil(Math.log(100_000_000 / MIN_US) / LOG_GROWTH) + 1

export interface LatencySummary {
  readonly count: number
  readonly meanMs: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly p999Ms: number
  readonly maxMs: number
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS)
  #count = 0
  #sumUs = 0
  #maxUs = 0

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    const us = Math.max(MIN_US, ms * 1000)
    const index = Math.min(BUCKETS - 1, Math.floor(Math.log(us / MIN_US) / LOG_GROWTH))
    this.#counts[index]++
    this.#count++
    this.#sumUs += us
    if (us > this.#maxUs) this.#maxUs = us
  }

  get count(): number {
    return this.#count
  }

  /** The latency (ms) at quantile `q` ∈ [0, 1]: the upper edge of the bucket holding it. */
  quantile(q: number): number {
    if (this.#count === 0) return 0
    const rank = Math.max(1, Math.ceil(q * this.#count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]
      if (seen >= rank) return Math.min(this.#maxUs, MIN_US * Math.pow(GROWTH, i + 1)) / 1000
    }
    return this.#maxUs / 1000
  }

  /** Adds another histogram's samples to this one (e.g. from several workers). */
  merge(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.#counts[i] += other.#counts[i]
    this.#count += other.#count
    this.#sumUs += other.#sumUs
    this.#maxUs = Math.max(this.#maxUs, other.#maxUs)
  }

  summary(): LatencySummary {
    const round = (ms: number) => Math.round(ms * 1000) / 1000
    return {
      count: this.#count,
      meanMs: round(this.#count === 0 ? 0 : this.#sumUs / this.#count / 1000),
      p50Ms: round(this.quantile(0.5)),
      p90Ms: round(this.quantile(0.9)),
      p99Ms: round(this.quantile(0.99)),
      p999Ms: round(this.quantile(0.999)),
      maxMs: round(this.#maxUs / 1000),
    }
  }
}
