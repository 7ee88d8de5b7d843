'use strict'

// Raw per-round results -> medians with their spread, and the ratios that matter: ours
// against MemoryStore and against the best SQLite peer measured in the same run.

const { spread, median } = require('../lib/stats')

const OURS = 'express-sqlite-native'
const MEMORY = 'MemoryStore'

const groupBy = (items, key) => {
  const groups = new Map()
  for (const item of items) {
    const k = key(item)
    if (!groups.has(k)) groups.set(k, [])
    groups.get(k).push(item)
  }
  return groups
}

const errorsOf = (records) => records.filter((r) => r.error).map((r) => `round ${r.round}: ${r.error.split('\n')[0]}`)

function summarizePhases(results) {
  const phases = {}
  const names = [...new Set(results.flatMap((r) => Object.keys(r.phases)))]
  for (const name of names) {
    const runs = results.map((r) => r.phases[name]).filter(Boolean)
    const measured = runs.filter((p) => p.opsPerSec !== undefined)
    const out = {}
    if (measured.length) {
      out.opsPerSec = spread(measured.map((p) => p.opsPerSec))
      out.p50us = median(measured.map((p) => p.p50us))
      out.p99us = median(measured.map((p) => p.p99us))
      const delays = measured.map((p) => p.loopDelay).filter(Boolean)
      if (delays.length) {
        out.loopDelayP99Ms = median(delays.map((d) => d.p99Ms))
        out.loopDelayMaxMs = median(delays.map((d) => d.maxMs))
        if (delays.every((d) => d.p99BeyondPeriodMs !== undefined)) {
          out.loopDelayP99BeyondPeriodMs = median(delays.map((d) => d.p99BeyondPeriodMs))
          out.loopDelayMaxBeyondPeriodMs = median(delays.map((d) => d.maxBeyondPeriodMs))
        }
      }
    }
    const skipped = runs.find((p) => p.skipped)
    if (skipped && !measured.length) out.skipped = skipped.skipped
    const failed = runs.filter((p) => p.error).map((p) => p.error)
    if (failed.length) out.errors = failed
    phases[name] = out
  }
  return phases
}

function summarizeApi(records) {
  const api = {}
  for (const [n, ofSize] of groupBy(records, (r) => r.n)) {
    api[n] = {}
    for (const [store, runs] of groupBy(ofSize, (r) => r.store)) {
      const results = runs.filter((r) => r.result).map((r) => r.result)
      const entry = { rounds: results.length }
      if (results.length) {
        entry.phases = summarizePhases(results)
        for (const key of ['rssMB', 'rssDeltaMB', 'dbBytes', 'walBytes', 'serverRssMB']) {
          const s = spread(results.map((r) => r[key]))
          if (s) entry[key] = s
        }
      }
      const errors = errorsOf(runs)
      if (errors.length) entry.errors = errors
      api[n][store] = entry
    }
  }
  return api
}

function summarizePrune(records) {
  const prune = {}
  for (const [store, runs] of groupBy(records, (r) => r.store)) {
    const results = runs.filter((r) => r.result && !r.result.skipped).map((r) => r.result)
    const skipped = runs.find((r) => r.result?.skipped)?.result.skipped
    const entry = {}
    if (results.length) {
      entry.n = results[0].n
      entry.ms = spread(results.map((r) => r.ms))
      entry.loopDelayP99Ms = median(results.map((r) => r.loopDelay.p99Ms))
      entry.loopDelayMaxMs = median(results.map((r) => r.loopDelay.maxMs))
      // Sanity: the live sessions left after the prune, in every round.
      entry.remaining = results.map((r) => r.remaining)
      entry.expectedRemaining = results[0].expectedRemaining
    } else if (skipped) {
      entry.skipped = skipped
    }
    const errors = errorsOf(runs)
    if (errors.length) entry.errors = errors
    prune[store] = entry
  }
  return prune
}

function summarizeHttp(records) {
  const http = {}
  for (const [target, runs] of groupBy(records, (r) => r.target)) {
    const results = runs.filter((r) => r.result).map((r) => r.result)
    const entry = { rounds: results.length, routes: {} }
    for (const route of [...new Set(results.flatMap((r) => Object.keys(r.routes)))]) {
      const values = results.map((r) => r.routes[route]).filter(Boolean)
      entry.routes[route] = {
        reqPerSec: spread(values.map((v) => v.reqPerSec)),
        p50ms: median(values.map((v) => v.p50ms)),
        p99ms: median(values.map((v) => v.p99ms)),
        errors: values.reduce((sum, v) => sum + v.errors, 0),
      }
    }
    if (results.length) {
      entry.readWithoutSession = results.reduce((sum, r) => sum + (r.counters?.readWithoutSession ?? 0), 0)
      entry.appErrors = results.reduce((sum, r) => sum + (r.counters?.errors ?? 0), 0)
    }
    const errors = errorsOf(runs)
    if (errors.length) entry.errors = errors
    http[target] = entry
  }
  return http
}

/**
 * Ours / MemoryStore and ours / the best SQLite peer (the fastest other sqlite store on
 * that very metric in this run), for every throughput metric.
 */
function compare(value, stores) {
  const ours = value(OURS)
  if (ours === undefined) return undefined
  const memory = value(MEMORY)
  let best
  for (const store of stores.filter((s) => s.sqlite && !s.ours)) {
    const v = value(store.name)
    if (v !== undefined && (!best || v > best.value)) best = { store: store.name, value: v }
  }
  return {
    ours,
    memoryStore: memory,
    vsMemoryStore: memory ? ours / memory : undefined,
    bestSqlitePeer: best?.store,
    bestSqlitePeerValue: best?.value,
    vsBestSqlitePeer: best ? ours / best.value : undefined,
  }
}

function ratios(summary, stores) {
  const out = { api: {}, http: {} }
  for (const [n, byStore] of Object.entries(summary.api)) {
    out.api[n] = {}
    const phaseNames = [...new Set(Object.values(byStore).flatMap((s) => Object.keys(s.phases ?? {})))]
    // A paced phase runs at one fixed rate for every store: its throughput compares nothing.
    for (const phase of phaseNames.filter((name) => !name.includes('paced'))) {
      const c = compare((store) => byStore[store]?.phases?.[phase]?.opsPerSec?.median, stores)
      if (c) out.api[n][phase] = c
    }
  }
  const routes = [...new Set(Object.values(summary.http).flatMap((t) => Object.keys(t.routes)))]
  for (const route of routes) {
    const value = (target) => summary.http[target]?.routes[route]?.reqPerSec?.median
    const c = compare(value, stores)
    if (c) out.http[route] = { ...c, noSessions: value('none'), vsNoSessions: value('none') ? c.ours / value('none') : undefined }
  }
  return out
}

/** The floor's phases per N, summarized like a store's. */
function summarizeFloor(records = []) {
  const floor = {}
  for (const [n, runs] of groupBy(records.filter((r) => r.n), (r) => r.n)) {
    const results = runs.filter((r) => r.result).map((r) => r.result)
    floor[n] = { rounds: results.length }
    if (results.length) floor[n].phases = summarizePhases(results)
    const errors = errorsOf(runs)
    if (errors.length) floor[n].errors = errors
  }
  return floor
}

function summarize(raw, stores) {
  const summary = {
    floor: summarizeFloor(raw.floor),
    api: summarizeApi(raw.api),
    prune: summarizePrune(raw.prune),
    http: summarizeHttp(raw.http),
  }
  summary.ratios = ratios(summary, stores)
  return summary
}

module.exports = { summarize, OURS, MEMORY }
