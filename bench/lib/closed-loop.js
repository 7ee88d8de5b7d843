'use strict'

// A closed-loop load generator for store calls: `concurrency` lanes, each issuing its
// next operation when the previous one completed, until a time budget or an operation
// count runs out. Concurrency 1 is "await each callback"; 64 is "64 in flight".
//
// Every lane issues its next call from a fresh event-loop task (setImmediate), as a
// server runs each request in its own task. Without that, stores whose callbacks come
// synchronously or via process.nextTick would chain calls through promise jobs and the
// loop would never turn, which is neither fair to the others nor what happens in an app.

const { performance } = require('node:perf_hooks')
const { percentile, round } = require('./stats')
const { startLoopDelay } = require('./loop-delay')

const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve))

/**
 * Runs op(k) for k = 0, 1, 2, ... (op returns a promise).
 * Returns ops, seconds, ops/s, p50/p99 latency (µs, call to callback) and, when asked,
 * the event-loop delay over the whole phase. The first error stops the phase and is
 * thrown once every lane has settled, so no stray call runs into the next phase.
 */
async function closedLoop(op, { concurrency, budgetMs = Infinity, maxOps = Infinity, monitorLoop = false }) {
  const latenciesUs = []
  let issued = 0
  let failure
  const delay = monitorLoop ? await startLoopDelay() : null
  const started = performance.now()
  const deadline = started + budgetMs

  async function lane() {
    while (!failure && issued < maxOps && performance.now() < deadline) {
      const k = issued++
      const t0 = performance.now()
      try {
        await op(k)
      } catch (error) {
        failure ??= error
        return
      }
      latenciesUs.push((performance.now() - t0) * 1000)
      await yieldToLoop()
    }
  }

  await Promise.all(Array.from({ length: concurrency }, lane))
  const seconds = (performance.now() - started) / 1000
  const loopDelay = delay?.stop()
  if (failure) throw failure
  latenciesUs.sort((a, b) => a - b)
  const result = {
    ops: latenciesUs.length,
    seconds: round(seconds, 3),
    opsPerSec: round(latenciesUs.length / seconds, 1),
    p50us: round(percentile(latenciesUs, 50)),
    p99us: round(percentile(latenciesUs, 99)),
  }
  if (loopDelay) result.loopDelay = loopDelay
  return result
}

module.exports = { closedLoop }
