'use strict'

// The store API benchmark for one store and one N: ops/s and latency per operation at
// concurrency 1 (each call awaited) and 64 (64 in flight), event-loop delay during the
// write phases, RSS and file size after populating.

const fs = require('node:fs')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const { sessionFor } = require('./session')

/** Calls a callback-style store method; resolves with its value. */
function call(store, method, ...args) {
  return new Promise((resolve, reject) =>
    store[method](...args, (error, value) => (error ? reject(error) : resolve(value))),
  )
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/**
 * Runs `op(k)` (k = 0, 1, 2, ...) with `concurrency` in flight, for `budgetMs` or
 * `maxOps` operations, whichever comes first.
 */
async function measure(op, { concurrency, budgetMs, maxOps, loopDelay = false, yieldToLoop = false }) {
  const latencies = []
  let issued = 0
  const started = process.hrtime.bigint()
  const deadline = started + BigInt(budgetMs) * 1_000_000n
  const delay = loopDelay ? monitorEventLoopDelay({ resolution: 1 }) : null
  delay?.enable()
  async function lane() {
    while (issued < maxOps && process.hrtime.bigint() < deadline) {
      const k = issued++
      const t0 = process.hrtime.bigint()
      await op(k)
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e3)
      if (yieldToLoop) await new Promise((resolve) => setImmediate(resolve))
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  delay?.disable()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  latencies.sort((a, b) => a - b)
  const result = {
    ops: latencies.length,
    opsPerSec: Math.round(latencies.length / seconds),
    p50us: Math.round(percentile(latencies, 50) * 10) / 10,
    p99us: Math.round(percentile(latencies, 99) * 10) / 10,
  }
  if (delay) {
    result.loopDelayP99ms = Math.round((delay.percentile(99) / 1e6) * 100) / 100
    result.loopDelayMaxMs = Math.round((delay.max / 1e6) * 100) / 100
  }
  return result
}

const fileBytes = (files) =>
  files.reduce((sum, f) => sum + [f, `${f}-wal`].reduce((s, p) => s + (fs.existsSync(p) ? fs.statSync(p).size : 0), 0), 0)

/**
 * Throughput, then the event-loop delay of the same workload run the way a server
 * runs it: each lane lets the loop turn between operations (a loop that never turns,
 * as with synchronous stores in a tight loop, takes no samples at all).
 */
async function measureWrites(op, options) {
  const result = await measure(op, options)
  if (options.concurrency === 64) {
    const delay = await measure(op, { ...options, loopDelay: true, yieldToLoop: true })
    result.loopDelayP99ms = delay.loopDelayP99ms
    result.loopDelayMaxMs = delay.loopDelayMaxMs
  }
  return result
}

/** All scenarios for one store instance holding N sessions. */
async function apiScenarios(handle, n, { budgetMs }) {
  const { store } = handle
  const sid = (k) => `sid-${k % n}`
  const results = {}
  const populateStart = process.hrtime.bigint()
  await measure((k) => call(store, 'set', `sid-${k}`, sessionFor(k)), { concurrency: 64, budgetMs: 10 * 60_000, maxOps: n })
  results.populate = { seconds: Math.round(Number(process.hrtime.bigint() - populateStart) / 1e7) / 100 }
  global.gc?.()
  results.rssMB = Math.round(process.memoryUsage().rss / 1048576)
  results.fileBytes = fileBytes(handle.files)

  const writeBudget = { budgetMs, maxOps: Infinity }
  for (const concurrency of [1, 64]) {
    const c = `c${concurrency}`
    results[`get-hit ${c}`] = await measure((k) => call(store, 'get', sid(k * 7919)), { concurrency, ...writeBudget })
    results[`get-miss ${c}`] = await measure((k) => call(store, 'get', `missing-${k}`), { concurrency, ...writeBudget })
    results[`set-overwrite ${c}`] = await measureWrites((k) => call(store, 'set', sid(k * 7919), sessionFor(k)), {
      concurrency,
      ...writeBudget,
    })
    results[`set-new ${c}`] = await measureWrites((k) => call(store, 'set', `new-${c}-${k}`, sessionFor(k)), {
      concurrency,
      ...writeBudget,
    })
    // express-sqlite has no touch (express-session then never calls it).
    if (typeof store.touch === 'function') {
      results[`touch ${c}`] = await measureWrites((k) => call(store, 'touch', sid(k * 7919), sessionFor(k)), {
        concurrency,
        ...writeBudget,
      })
    }
  }
  results['length c1'] = await measure(() => call(store, 'length'), { concurrency: 1, budgetMs, maxOps: n > 10_000 ? 20 : 200 })
  if (n <= 10_000 && typeof store.all === 'function') {
    results['all c1'] = await measure(() => call(store, 'all'), { concurrency: 1, budgetMs, maxOps: 20 })
  }
  // Destroy last, on disjoint quarters of the population.
  results['destroy c1'] = await measure((k) => call(store, 'destroy', `sid-${k}`), { concurrency: 1, budgetMs, maxOps: n / 4 })
  results['destroy c64'] = await measure((k) => call(store, 'destroy', `sid-${n / 2 + k}`), { concurrency: 64, budgetMs, maxOps: n / 4 })
  return results
}

/** A prune of `n` expired sessions: its time and the event-loop delay while it runs. */
async function pruneScenario(handle, n) {
  const { store } = handle
  const lifetimeMs = 1500
  await measure((k) => call(store, 'set', `exp-${k}`, sessionFor(k, lifetimeMs)), { concurrency: 64, budgetMs: 10 * 60_000, maxOps: n })
  await new Promise((resolve) => setTimeout(resolve, lifetimeMs + 100))
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const started = process.hrtime.bigint()
  await handle.prune()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  // Let the monitor take a few samples after a synchronous prune too.
  await new Promise((resolve) => setTimeout(resolve, 20))
  delay.disable()
  return {
    ms: Math.round(ms),
    loopDelayP99ms: Math.round((delay.percentile(99) / 1e6) * 100) / 100,
    loopDelayMaxMs: Math.round((delay.max / 1e6) * 100) / 100,
  }
}

module.exports = { apiScenarios, pruneScenario, measure, call }
