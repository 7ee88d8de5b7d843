'use strict'

// Turns raw per-round results into medians (with their spread) and writes the JSON,
// a Markdown report and an SVG chart of ratios against MemoryStore.

const fs = require('node:fs')
const path = require('node:path')

const OURS = 'express-sqlite-native'
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : undefined
}
const spread = (values) => ({ median: median(values), min: Math.min(...values), max: Math.max(...values) })
const fmt = (n) => (n === undefined || Number.isNaN(n) ? '–' : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n))
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : '–')

function summarize(raw) {
  const api = {}
  for (const [store, bySize] of Object.entries(raw.api)) {
    for (const [n, runs] of Object.entries(bySize)) {
      const scenarios = Object.keys(runs[0]).filter((k) => typeof runs[0][k] === 'object' && 'opsPerSec' in runs[0][k])
      const out = { rssMB: spread(runs.map((r) => r.rssMB)), fileBytes: spread(runs.map((r) => r.fileBytes)) }
      for (const s of scenarios) {
        const values = (key) => runs.map((r) => r[s]?.[key]).filter((v) => v !== undefined)
        out[s] = { opsPerSec: spread(values('opsPerSec')), p50us: median(values('p50us')), p99us: median(values('p99us')) }
        if (values('loopDelayP99ms').length) {
          out[s].loopDelayP99ms = median(values('loopDelayP99ms'))
          out[s].loopDelayMaxMs = Math.max(...values('loopDelayMaxMs'))
        }
      }
      ;(api[store] ??= {})[n] = out
    }
  }
  const prune = {}
  for (const [store, runs] of Object.entries(raw.prune)) {
    prune[store] = {
      ms: spread(runs.map((r) => r.ms)),
      loopDelayP99ms: median(runs.map((r) => r.loopDelayP99ms)),
      loopDelayMaxMs: Math.max(...runs.map((r) => r.loopDelayMaxMs)),
    }
  }
  const http = {}
  for (const [store, runs] of Object.entries(raw.http)) {
    http[store] = {}
    for (const route of Object.keys(runs[0])) {
      http[store][route] = {
        reqPerSec: spread(runs.map((r) => r[route].reqPerSec)),
        p99ms: median(runs.map((r) => r[route].p99ms)),
        errors: runs.reduce((sum, r) => sum + r[route].errors, 0),
      }
    }
  }
  return { api, prune, http }
}

function bestSqlitePeer(values, sqliteStores) {
  let best
  for (const store of sqliteStores) {
    if (store === OURS) continue
    const v = values(store)
    if (v !== undefined && (best === undefined || v > best.value)) best = { store, value: v }
  }
  return best
}

function markdown(meta, summary, sqliteStores) {
  const lines = []
  const storeNames = Object.keys(summary.api).length ? Object.keys(summary.api) : Object.keys(summary.http).filter((s) => s !== 'none')
  lines.push(`Node ${meta.node}; ${meta.machine}; ${meta.rounds} interleaved round(s); medians, [min–max] over rounds.`)
  lines.push('')
  lines.push(`Versions: ${Object.entries(meta.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`)
  for (const [name, reason] of Object.entries(meta.skipped)) lines.push(`Skipped ${name}: ${reason}.`)
  for (const n of meta.sizes) {
    if (!storeNames.some((s) => summary.api[s]?.[n])) continue
    lines.push('', `### Store API, N = ${n.toLocaleString('en')} (ops/s)`, '')
    lines.push(`| operation | ${storeNames.join(' | ')} | ours / MemoryStore | ours / best SQLite peer |`)
    lines.push(`|---|${storeNames.map(() => '---:').join('|')}|---:|---:|`)
    const scenarios = Object.keys(summary.api[OURS]?.[n] ?? summary.api[storeNames[0]][n]).filter((k) => k.includes(' c'))
    for (const s of scenarios) {
      const value = (store) => summary.api[store]?.[n]?.[s]?.opsPerSec.median
      const cells = storeNames.map((store) => {
        const v = summary.api[store]?.[n]?.[s]?.opsPerSec
        return v ? `${fmt(v.median)} [${fmt(v.min)}–${fmt(v.max)}]` : '–'
      })
      const best = bestSqlitePeer(value, sqliteStores)
      lines.push(`| ${s} | ${cells.join(' | ')} | ${ratio(value(OURS), value('MemoryStore'))} | ${best ? `${ratio(value(OURS), best.value)} (${best.store})` : '–'} |`)
    }
    lines.push('', `Latency p50 / p99 (µs), N = ${n.toLocaleString('en')}:`, '')
    lines.push(`| operation | ${storeNames.join(' | ')} |`)
    lines.push(`|---|${storeNames.map(() => '---:').join('|')}|`)
    for (const s of ['get-hit c1', 'set-overwrite c1', 'set-overwrite c64', 'touch c64']) {
      lines.push(`| ${s} | ${storeNames.map((st) => { const r = summary.api[st]?.[n]?.[s]; return r ? `${r.p50us} / ${r.p99us}` : '–' }).join(' | ')} |`)
    }
    lines.push('', `Event-loop delay while writing at concurrency 64, p99 / max (ms), N = ${n.toLocaleString('en')}:`, '')
    lines.push(`| phase | ${storeNames.join(' | ')} |`)
    lines.push(`|---|${storeNames.map(() => '---:').join('|')}|`)
    for (const s of ['set-overwrite c64', 'set-new c64', 'touch c64']) {
      lines.push(`| ${s} | ${storeNames.map((st) => { const r = summary.api[st]?.[n]?.[s]; return r?.loopDelayP99ms !== undefined ? `${r.loopDelayP99ms} / ${r.loopDelayMaxMs}` : '–' }).join(' | ')} |`)
    }
    lines.push('', `After populating N = ${n.toLocaleString('en')}: RSS (MB) and file + WAL size (MB):`, '')
    lines.push(`| | ${storeNames.join(' | ')} |`)
    lines.push(`|---|${storeNames.map(() => '---:').join('|')}|`)
    lines.push(`| RSS | ${storeNames.map((st) => summary.api[st]?.[n]?.rssMB.median ?? '–').join(' | ')} |`)
    lines.push(`| file | ${storeNames.map((st) => { const b = summary.api[st]?.[n]?.fileBytes.median; return b ? (b / 1048576).toFixed(1) : '–' }).join(' | ')} |`)
  }
  if (Object.keys(summary.prune).length) {
    lines.push('', `### Prune of ${meta.pruneN.toLocaleString('en')} expired sessions`, '')
    lines.push('| store | time (ms) | event-loop delay p99 / max (ms) |', '|---|---:|---:|')
    for (const [store, r] of Object.entries(summary.prune)) {
      lines.push(`| ${store} | ${r.ms.median} [${r.ms.min}–${r.ms.max}] | ${r.loopDelayP99ms} / ${r.loopDelayMaxMs} |`)
    }
  }
  if (Object.keys(summary.http).length) {
    const names = Object.keys(summary.http)
    lines.push('', '### HTTP through Express (req/s, p99 ms; 64 connections)', '')
    lines.push(`| route | ${names.map((n) => (n === 'none' ? 'no sessions (ceiling)' : n)).join(' | ')} | ours / MemoryStore | ours / best SQLite peer |`)
    lines.push(`|---|${names.map(() => '---:').join('|')}|---:|---:|`)
    for (const route of Object.keys(summary.http[names[0]])) {
      const value = (store) => summary.http[store]?.[route]?.reqPerSec.median
      const best = bestSqlitePeer(value, sqliteStores)
      lines.push(
        `| ${route} | ${names.map((st) => { const r = summary.http[st][route]; return `${fmt(r.reqPerSec.median)} [${fmt(r.reqPerSec.min)}–${fmt(r.reqPerSec.max)}], ${r.p99ms}${r.errors ? `, ${r.errors} errors` : ''}` }).join(' | ')} | ${ratio(value(OURS), value('MemoryStore'))} | ${best ? `${ratio(value(OURS), best.value)} (${best.store})` : '–'} |`,
      )
    }
  }
  return lines.join('\n') + '\n'
}

/** Bars of ours and every peer relative to MemoryStore, for the headline operations. */
function svg(summary) {
  const n = 10000
  const metrics = [
    ['get-hit c1', (s) => summary.api[s]?.[n]?.['get-hit c1']?.opsPerSec.median],
    ['set-overwrite c1', (s) => summary.api[s]?.[n]?.['set-overwrite c1']?.opsPerSec.median],
    ['set-overwrite c64', (s) => summary.api[s]?.[n]?.['set-overwrite c64']?.opsPerSec.median],
    ['touch c64', (s) => summary.api[s]?.[n]?.['touch c64']?.opsPerSec.median],
    ['HTTP read', (s) => summary.http[s]?.read?.reqPerSec.median],
    ['HTTP write', (s) => summary.http[s]?.write?.reqPerSec.median],
    ['HTTP login', (s) => summary.http[s]?.login?.reqPerSec.median],
  ]
  const stores = [...new Set([...Object.keys(summary.api), ...Object.keys(summary.http)])].filter((s) => s !== 'none')
  const colors = ['#d9480f', '#868e96', '#1c7ed6', '#37b24d', '#f59f00', '#7048e8', '#e64980', '#0ca678', '#495057']
  const barH = 9
  const groupH = stores.length * barH + 14
  const width = 760
  const left = 150
  const scale = 180 // pixels per 1× MemoryStore
  const height = metrics.length * groupH + 40 + stores.length * 16
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`]
  parts.push(`<text x="${left}" y="14" font-weight="bold">Throughput relative to express-session's MemoryStore (1× line), N = 10,000</text>`)
  parts.push(`<line x1="${left + scale}" y1="20" x2="${left + scale}" y2="${metrics.length * groupH + 24}" stroke="#000" stroke-dasharray="3,3"/>`)
  metrics.forEach(([label, value], i) => {
    const y0 = 24 + i * groupH
    parts.push(`<text x="${left - 6}" y="${y0 + groupH / 2}" text-anchor="end">${label}</text>`)
    const base = value('MemoryStore')
    stores.forEach((store, j) => {
      const v = value(store)
      if (!v || !base) return
      const w = Math.min(width - left - 60, (v / base) * scale)
      parts.push(`<rect x="${left}" y="${y0 + j * barH}" width="${w.toFixed(1)}" height="${barH - 1}" fill="${colors[j % colors.length]}"/>`)
      parts.push(`<text x="${left + w + 3}" y="${y0 + j * barH + barH - 2}" font-size="8">${(v / base).toFixed(2)}×</text>`)
    })
  })
  stores.forEach((store, j) => {
    const y = metrics.length * groupH + 36 + j * 16
    parts.push(`<rect x="${left}" y="${y - 9}" width="10" height="10" fill="${colors[j % colors.length]}"/><text x="${left + 16}" y="${y}">${store}</text>`)
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

function writeReports(dir, meta, raw) {
  fs.mkdirSync(dir, { recursive: true })
  const summary = summarize(raw)
  const sqliteStores = Object.keys(meta.versions).filter((name) => require('./stores').stores.find((s) => s.name === name)?.sqlite)
  const major = meta.node.split('.')[0].replace('v', '')
  const stamp = meta.date.slice(0, 19).replace(/[:T]/g, '-')
  const files = {
    [`${stamp}-node${major}.json`]: JSON.stringify({ meta, summary, raw }, null, 1),
    [`latest-node${major}.md`]: markdown(meta, summary, sqliteStores),
    [`latest-node${major}.svg`]: svg(summary),
  }
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content)
  return Object.keys(files)
}

module.exports = { writeReports, summarize }
