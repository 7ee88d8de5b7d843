'use strict'

// Number formatting shared by the Markdown and SVG reports.

/** 1234 -> "1.23k", 56789 -> "56.8k", 1234567 -> "1.23M", 12.3 -> "12.3". */
function count(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–'
  const abs = Math.abs(n)
  if (abs >= 1e6) return `${(n / 1e6).toFixed(abs >= 1e7 ? 1 : 2)}M`
  if (abs >= 1e4) return `${(n / 1e3).toFixed(1)}k`
  if (abs >= 1e3) return `${(n / 1e3).toFixed(2)}k`
  if (abs >= 100) return String(Math.round(n))
  if (abs >= 10) return n.toFixed(1)
  return n.toFixed(2)
}

/** A median with its min-max spread when there was more than one round. */
function withSpread(s, fmt = count) {
  if (!s) return '–'
  return s.n > 1 ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : fmt(s.median)
}

function ratio(r) {
  if (r === undefined || r === null || !Number.isFinite(r)) return '–'
  return `${r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toFixed(3)}×`
}

const mb = (bytes) => (bytes === undefined ? '–' : (bytes / 1048576).toFixed(1))

module.exports = { count, withSpread, ratio, mb }
