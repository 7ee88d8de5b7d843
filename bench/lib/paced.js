'use strict'

// An open-loop load: operations issued at a fixed rate whatever their latency, as
// requests reach a server, while the event loop is sampled. A closed loop at high
// concurrency keeps the loop busy by itself (MemoryStore shows milliseconds of delay
// there); at a steady, moderate rate the delay left is what the store adds: SQLite
// work or WAL checkpoints run on the main thread show up here, background threads do not.

const { performance } = require('node:perf_hooks')
const { percentile, round } = require('./stats')
const { startLoopDelay } = require('./loop-delay')

/** Most operations in flight: a store slower than the rate falls behind, not over. */
const MAX_IN_FLIGHT = 1024

/**
 * Runs op(k) at `rate` per second for `durationMs`. Returns the rate achieved, p50/p99
 * latency (µs), and the event-loop delay over the run, raw and beyond the monitor's 1 ms
 * sampling period (an idle loop reads about 1.1 ms raw).
 */
async function paced(op, { rate, durationMs }) {
  const latenciesUs = []
  let issued = 0
  let inFlight = 0
  let failure
  const delay = await startLoopDelay()
  const started = performance.now()
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - started
      const due = Math.min(Math.floor((elapsed / 1000) * rate), Math.floor((durationMs / 1000) * rate))
      while (issued < due && inFlight < MAX_IN_FLIGHT && !failure) {
        const k = issued++
        const t0 = performance.now()
        inFlight++
        op(k).then(
          () => {
            inFlight--
            latenciesUs.push((performance.now() - t0) * 1000)
          },
          (error) => {
            inFlight--
            failure ??= error
          },
        )
      }
      if (elapsed >= durationMs) {
        clearInterval(tick)
        resolve()
      }
    }, 1)
  })
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 1))
  const loopDelay = delay.stop()
  if (failure) throw failure
  const seconds = (performance.now() - started) / 1000
  latenciesUs.sort((a, b) => a - b)
  return {
    ops: latenciesUs.length,
    seconds: round(seconds, 3),
    targetRate: rate,
    opsPerSec: round(latenciesUs.length / seconds, 1),
    p50us: round(percentile(latenciesUs, 50)),
    p99us: round(percentile(latenciesUs, 99)),
    loopDelay: { ...loopDelay, p99BeyondPeriodMs: round(Math.max(0, loopDelay.p99Ms - 1), 2), maxBeyondPeriodMs: round(Math.max(0, loopDelay.maxMs - 1), 2) },
  }
}

module.exports = { paced }
