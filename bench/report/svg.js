'use strict'

// results -> latest.svg: a hand-written horizontal bar chart. One group per headline
// metric; each bar is a store's median relative to MemoryStore (the dashed line at 1×),
// ours highlighted, and each group's title gives ours vs MemoryStore and vs the best
// SQLite peer.

const { count, ratio } = require('./format')

const WIDTH = 1000
const LABEL_W = 250
const BAR_X = LABEL_W + 10
const BAR_W = 560
const BAR_H = 14
const GAP = 5
const CAP = 3 // bars longer than 3× MemoryStore are clipped (and marked)

const COLORS = { ours: '#e8590c', sqlite: '#4263eb', memory: '#495057', other: '#adb5bd', ceiling: '#ced4da' }

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** The groups to draw: API writes and reads at concurrency 64 for each N, then HTTP. */
function groups(results) {
  const { summary, meta } = results
  const storeMeta = Object.fromEntries(meta.stores.map((s) => [s.name, s]))
  const names = meta.stores.filter((s) => s.status === 'ran').map((s) => s.name)
  const out = []
  for (const [n, byStore] of Object.entries(summary.api)) {
    for (const phase of ['get-hit c64', 'set-overwrite c64', 'touch c64']) {
      const bars = names
        .map((name) => ({ name, value: byStore[name]?.phases?.[phase]?.opsPerSec?.median }))
        .filter((b) => b.value !== undefined)
      if (bars.length) out.push({ title: `${phase}, N = ${Number(n).toLocaleString('en')} (ops/s)`, bars, c: summary.ratios.api[n]?.[phase] })
    }
  }
  for (const route of ['read', 'write', 'login']) {
    const bars = ['none', ...names]
      .map((name) => ({ name, value: summary.http[name]?.routes[route]?.reqPerSec?.median }))
      .filter((b) => b.value !== undefined)
    if (bars.length) out.push({ title: `HTTP ${route} (req/s)`, bars, c: summary.ratios.http[route] })
  }
  for (const g of out) {
    for (const b of g.bars) {
      const s = storeMeta[b.name]
      b.color = b.name === 'none' ? COLORS.ceiling : s?.ours ? COLORS.ours : s?.sqlite ? COLORS.sqlite : b.name === 'MemoryStore' ? COLORS.memory : COLORS.other
      b.label = b.name === 'none' ? 'no sessions (ceiling)' : b.name
    }
  }
  return out
}

function svg(results) {
  const list = groups(results)
  const parts = []
  let y = 88
  for (const g of list) {
    const base = g.bars.find((b) => b.name === 'MemoryStore')?.value ?? Math.max(...g.bars.map((b) => b.value))
    const baseName = g.bars.some((b) => b.name === 'MemoryStore') ? 'MemoryStore' : 'the fastest'
    const scale = BAR_W / CAP
    const vsPeer = g.c?.bestSqlitePeer ? `${ratio(g.c.vsBestSqlitePeer)} best SQLite peer (${g.c.bestSqlitePeer})` : 'no SQLite peer measured'
    const summaryText = g.c ? `ours ${ratio(g.c.vsMemoryStore)} MemoryStore, ${vsPeer}` : `relative to ${baseName}`
    parts.push(`<text x="10" y="${y}" class="group">${esc(g.title)}</text>`)
    parts.push(`<text x="${WIDTH - 10}" y="${y}" class="summary" text-anchor="end">${esc(summaryText)}</text>`)
    y += 8
    // The 1× line goes first so that bars and their labels are drawn over it.
    const oneX = BAR_X + scale
    parts.push(`<line x1="${oneX}" y1="${y - 4}" x2="${oneX}" y2="${y + g.bars.length * (BAR_H + GAP)}" class="one"/>`)
    for (const b of g.bars) {
      const r = b.value / base
      const w = Math.max(1, Math.min(r, CAP) * scale)
      parts.push(`<text x="${LABEL_W}" y="${y + BAR_H - 3}" text-anchor="end" class="${b.color === COLORS.ours ? 'ours' : 'label'}">${esc(b.label)}</text>`)
      parts.push(`<rect x="${BAR_X}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${b.color}"/>`)
      if (r > CAP) parts.push(`<text x="${BAR_X + w - 4}" y="${y + BAR_H - 3}" text-anchor="end" class="clip">≫</text>`)
      parts.push(`<text x="${BAR_X + w + 6}" y="${y + BAR_H - 3}" class="value">${esc(`${ratio(r)} · ${count(b.value)}`)}</text>`)
      y += BAR_H + GAP
    }
    y += 26
  }
  const height = y + 10
  const meta = results.meta
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, sans-serif">
<style>
  .title { font-size: 16px; font-weight: 600; }
  .sub { font-size: 12px; fill: #495057; }
  .group { font-size: 13px; font-weight: 600; }
  .summary { font-size: 12px; fill: #e8590c; }
  .label { font-size: 11px; fill: #212529; }
  .ours { font-size: 11px; fill: #e8590c; font-weight: 600; }
  .value { font-size: 11px; fill: #495057; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
  .clip { font-size: 11px; fill: #fff; }
  .one { stroke: #212529; stroke-dasharray: 3 3; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="22" class="title">${esc(`express-sqlite-native vs other session stores (${meta.date.slice(0, 10)}, Node ${meta.node})`)}</text>
<text x="10" y="40" class="sub">${esc(`Bars: median throughput relative to express-session's MemoryStore (dashed line = 1×; clipped at ${CAP}×). ${meta.options.rounds} round(s)${meta.options.quick ? ', quick run' : ''}.`)}</text>
<text x="10" y="55" class="sub">${esc('Orange: ours. Blue: SQLite peers. Dark grey: MemoryStore. Light grey: other stores, and the app without sessions.')}</text>
${parts.join('\n')}
</svg>
`
}

module.exports = { svg }
