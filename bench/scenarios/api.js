'use strict'

// The store API benchmark for one store and one N, run inside a fresh worker process:
// populate N sessions, note RSS and file sizes, then measure each operation at
// concurrency 1 and 64 for a time budget. Latency is call-to-callback; the event-loop
// delay is sampled over every phase at concurrency 64 (the report shows the writes).

const fs = require('node:fs')
const { closedLoop } = require('../lib/closed-loop')
const { paced } = require('../lib/paced')
const { invoke } = require('../lib/invoke')
const { populate } = require('../lib/populate')
const { sessionData, sidFor } = require('../lib/session-data')

const MB = 1024 * 1024
const PACED_RATE = 4000
const PACED_MS = 2000
const rssMB = () => {
  global.gc?.()
  return Math.round((process.memoryUsage().rss / MB) * 10) / 10
}
const sizeOf = (file) => (fs.existsSync(file) ? fs.statSync(file).size : 0)

/**
 * The phases, in order. Every phase but set-new keeps the population at N, so set-new
 * (which adds as many rows as the store manages in its budget) comes after everything
 * else but destroy: length and all would otherwise count a faster store's extra rows.
 */
/** Session ids computed once, outside the timed calls: hashing one costs about as much
 * as a MemoryStore get, and is the harness's work, not the store's. */
const MISSING_POOL = 1 << 16
const DAY_MS = 86_400_000
/** First pass number of each touch phase (see phases): far apart, so no phase repeats another's expiry. */
const TOUCH_PASS_BASE = { c1: 2, c64: 20 }
function sidTable(prefix, count) {
  return Array.from({ length: count }, (_, i) => sidFor(prefix, i))
}

/** Draws for the Zipf-like read pattern (exponent 1 over the N sessions by rank): most
 * requests come from a few active users, as in a real app. At N = 100,000 the most
 * active 1 % of sessions get about 62 % of the reads and the top 20 % about 87 %. */
const ZIPF_DRAWS = 1 << 16
function zipfRanks(n, count, seed = 12345) {
  const cumulative = new Float64Array(n)
  let sum = 0
  for (let rank = 0; rank < n; rank++) cumulative[rank] = sum += 1 / (rank + 1)
  let state = seed
  const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32)
  return Array.from({ length: count }, () => {
    const target = random() * sum
    let low = 0
    let high = n - 1
    while (low < high) {
      const mid = (low + high) >> 1
      if (cumulative[mid] < target) low = mid + 1
      else high = mid
    }
    return low
  })
}

function phases(store, n) {
  const sids = sidTable('sid', n)
  const missing = sidTable('missing', MISSING_POOL)
  // k * 7919 (a prime) mod n walks the population in a scattered order.
  const existing = (k) => sids[(k * 7919) % n]
  const zipf = zipfRanks(n, ZIPF_DRAWS).map((rank) => existing(rank))
  const both = (name, make, extra = {}) =>
    [1, 64].map((concurrency) => ({ name: `${name} c${concurrency}`, concurrency, op: make(`c${concurrency}`), ...extra }))
  const quarter = Math.floor(n / 4)
  return [
    ...both('get-hit', () => (k) => invoke(store, 'get', [existing(k)])),
    ...both('get-hit zipf', () => (k) => invoke(store, 'get', [zipf[k % ZIPF_DRAWS]])),
    ...both('get-miss', () => (k) => invoke(store, 'get', [missing[k % MISSING_POOL]])),
    // length and all are admin calls, not per-request ones: concurrency 1, few calls.
    { name: 'length c1', concurrency: 1, maxOps: 200, op: () => invoke(store, 'length') },
    ...(n <= 10_000 ? [{ name: 'all c1', concurrency: 1, maxOps: 20, method: 'all', op: () => invoke(store, 'all') }] : []),
    ...both('set-overwrite', () => (k) => invoke(store, 'set', [existing(k), sessionData(k)])),
    // Every touch moves the expiry by 2 s or more past the stored one (a new offset per
    // phase and per pass over the population): ours skips touches that would move it by
    // less than a cookie's one-second precision, and this row measures written touches.
    ...both(
      'touch',
      (c) => (k) => invoke(store, 'touch', [existing(k), sessionData(k, DAY_MS + (TOUCH_PASS_BASE[c] + Math.floor(k / n)) * 2000)]),
      { method: 'touch' },
    ),
    // Sustained writes at a steady rate, for the event-loop delay a store adds.
    {
      name: `set paced ${PACED_RATE / 1000}k/s`,
      paced: { rate: PACED_RATE, durationMs: PACED_MS },
      op: (k) => invoke(store, 'set', [existing(k), sessionData(k)]),
    },
    ...both('set-new', (c) => (k) => invoke(store, 'set', [sidFor(`new-${c}`, k), sessionData(k)])),
    // Destroy existing sessions, on disjoint quarters so every call deletes a row.
    { name: 'destroy c1', concurrency: 1, maxOps: quarter, op: (k) => invoke(store, 'destroy', [sids[k]]) },
    {
      name: 'destroy c64',
      concurrency: 64,
      maxOps: quarter,
      op: (k) => invoke(store, 'destroy', [sids[2 * quarter + k]]),
    },
  ]
}

async function apiScenario(storeModule, dir, { n, budgetMs }) {
  const handle = await storeModule.create(dir)
  const { store } = handle
  try {
    const result = { n, rssEmptyMB: rssMB() }
    result.populate = await populate(handle, n)
    result.rssMB = rssMB()
    result.rssDeltaMB = Math.round((result.rssMB - result.rssEmptyMB) * 10) / 10
    if (handle.files) {
      result.dbBytes = handle.files.reduce((sum, f) => sum + sizeOf(f), 0)
      result.walBytes = handle.files.reduce((sum, f) => sum + sizeOf(`${f}-wal`), 0)
    }
    if (handle.externalRssBytes) result.serverRssMB = Math.round(((await handle.externalRssBytes()) / MB) * 10) / 10
    // Warm the read path up (JIT, caches) before measuring it.
    await closedLoop((k) => invoke(store, 'get', [sidFor('sid', k % n)]), { concurrency: 1, maxOps: 500 })

    result.phases = {}
    for (const phase of phases(store, n)) {
      if (phase.method && typeof store[phase.method] !== 'function') {
        result.phases[phase.name] = { skipped: `no ${phase.method}()` }
        continue
      }
      try {
        if (phase.paced) {
          result.phases[phase.name] = await paced(phase.op, phase.paced)
          continue
        }
        result.phases[phase.name] = await closedLoop(phase.op, {
          concurrency: phase.concurrency,
          budgetMs,
          maxOps: phase.maxOps,
          monitorLoop: phase.concurrency > 1,
        })
      } catch (error) {
        result.phases[phase.name] = { error: String(error && error.message) }
      }
    }
    return result
  } finally {
    await handle.close()
  }
}

module.exports = { apiScenario, zipfRanks }
