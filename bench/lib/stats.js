'use strict'

// Small statistics helpers: percentiles of one run's latencies, and the median with its
// spread (min-max) of one metric across interleaved rounds.

/** Nearest-rank percentile of an ascending array; undefined when empty. */
function percentile(sorted, p) {
  if (sorted.length === 0) return undefined
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

const finite = (values) => values.filter((v) => typeof v === 'number' && Number.isFinite(v))

/** Median (mean of the middle two for an even count); undefined when empty. */
function median(values) {
  const sorted = finite(values).sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** { median, min, max, n } of the finite values, or undefined when there are none. */
function spread(values) {
  const kept = finite(values)
  if (kept.length === 0) return undefined
  return { median: median(kept), min: Math.min(...kept), max: Math.max(...kept), n: kept.length }
}

/** Rounds to `digits` decimals (keeps the JSON readable). */
const round = (value, digits = 1) => (value === undefined ? undefined : Math.round(value * 10 ** digits) / 10 ** digits)

module.exports = { percentile, median, spread, round }
