'use strict'

// Event-loop delay while something runs, from perf_hooks' histogram sampled every 1 ms
// (the finest resolution it accepts). A store that does its SQLite work on the main
// thread shows up here even when its throughput looks fine.

const { monitorEventLoopDelay } = require('node:perf_hooks')
const { round } = require('./stats')

/**
 * Starts sampling; resolves once the histogram has a reference point. (Its first timer
 * tick only sets that point, so a block before it would go unrecorded.)
 */
async function startLoopDelay() {
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  await new Promise((resolve) => setTimeout(resolve, 3))
  return {
    /** Stops sampling; p99, max and mean delay in milliseconds. */
    stop() {
      histogram.disable()
      const empty = histogram.count === 0
      return {
        p99Ms: empty ? 0 : round(histogram.percentile(99) / 1e6, 2),
        maxMs: empty ? 0 : round(histogram.max / 1e6, 2),
        meanMs: empty ? 0 : round(histogram.mean / 1e6, 2),
        samples: histogram.count,
      }
    },
  }
}

module.exports = { startLoopDelay }
