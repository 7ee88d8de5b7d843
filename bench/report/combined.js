'use strict'

// The newest full run of each Node major in results/ -> results/summary.md (the table
// the README shows: one column group per Node) and results/summary-node<major>.svg
// (that run's chart). Ratios are always taken within one run.

const fs = require('node:fs')
const path = require('node:path')
const { count, ratio } = require('./format')
const { svg } = require('./svg')
const { OURS, MEMORY } = require('./summarize')

const NODE_SQLITE = 'node:sqlite'

const row = (cells) => `| ${cells.join(' | ')} |`

/** The newest results file per Node major: { major: results }. */
function newestRuns(dir, { quick }) {
  const byMajor = new Map()
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d{4}-\d\d-\d\d-node-v.*\.json$/.test(f)) : []
  for (const file of files) {
    const results = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'))
    if (Boolean(results.meta.options.quick) !== Boolean(quick)) continue
    const major = results.meta.node.replace(/^v/, '').split('.')[0]
    const seen = byMajor.get(major)
    if (!seen || results.meta.date > seen.meta.date) byMajor.set(major, results)
  }
  return new Map([...byMajor].sort((a, b) => Number(a[0]) - Number(b[0])))
}

/** The loop-delay monitor samples every 1 ms: an idle loop reads about that. */
const beyondPeriod = (ms) => (ms === undefined ? undefined : Math.max(0, Math.round((ms - 1) * 100) / 100))

const hasFloor = (results) => Object.keys(results.summary.floor ?? {}).length > 0

/** The rows of the summary: what a reader compares, each a getter of one store's median. */
function metrics(results) {
  const { summary } = results
  const sizes = Object.keys(summary.api)
  const rows = []
  for (const n of sizes) {
    const label = `N=${Number(n).toLocaleString('en')}`
    const writes = ['set-overwrite', 'set-new', 'touch', 'destroy'].flatMap((w) => [`${w} c1`, `${w} c64`])
    const phases = n <= 10_000
      ? ['get-hit c1', 'get-hit c64', 'get-hit zipf c1', 'get-miss c1', ...writes]
      : ['get-hit c1', 'get-hit zipf c1', 'get-hit zipf c64', ...writes]
    for (const phase of phases) {
      rows.push({
        label: `${phase}, ${label} (ops/s)`,
        higherIsBetter: true,
        value: (store) => summary.api[n]?.[store]?.phases?.[phase]?.opsPerSec?.median,
        floor: writes.includes(phase) ? summary.floor?.[n]?.phases?.[phase]?.opsPerSec?.median : undefined,
      })
    }
  }
  for (const route of ['read', 'write', 'login']) {
    rows.push({
      label: `HTTP ${route} (req/s)`,
      higherIsBetter: true,
      value: (store) => summary.http[store]?.routes[route]?.reqPerSec?.median,
    })
  }
  const firstN = sizes[0]
  if (firstN) {
    const pacedPhase = (store) =>
      Object.entries(summary.api[firstN]?.[store]?.phases ?? {}).find(([name]) => name.includes('paced'))?.[1]
    rows.push({
      label: 'event-loop delay p99 beyond the 1 ms sampling period, sets at a steady 4k/s (ms)',
      value: (store) => pacedPhase(store)?.loopDelayP99BeyondPeriodMs,
    })
    rows.push({
      label: 'event-loop delay max, sets at a steady 4k/s (ms)',
      value: (store) => pacedPhase(store)?.loopDelayMaxBeyondPeriodMs,
    })
  }
  rows.push({ label: 'prune of expired sessions (ms)', value: (store) => summary.prune[store]?.ms?.median })
  rows.push({
    label: 'event-loop delay p99 beyond the 1 ms sampling period during the prune (ms)',
    value: (store) => beyondPeriod(summary.prune[store]?.loopDelayP99Ms),
  })
  rows.push({ label: 'event-loop delay max during the prune (ms)', value: (store) => summary.prune[store]?.loopDelayMaxMs })
  for (const n of sizes) {
    rows.push({ label: `RSS with N=${Number(n).toLocaleString('en')} (MB)`, value: (store) => summary.api[n]?.[store]?.rssMB?.median })
  }
  return rows
}

/** The fastest SQLite store other than ours (and other than node:sqlite, shown apart) on a row. */
function bestPeer(results, metric) {
  let best
  for (const s of results.meta.stores) {
    if (!s.sqlite || s.ours || s.name === NODE_SQLITE || s.status !== 'ran') continue
    const v = metric.value(s.name)
    if (v === undefined) continue
    const better = !best || (metric.higherIsBetter ? v > best.value : v < best.value)
    if (better) best = { name: s.name, value: v }
  }
  return best
}

const speedup = (metric, ours, other) => {
  if (ours === undefined || other === undefined) return '–'
  return ratio(metric.higherIsBetter ? ours / other : other / ours)
}

function table(runs) {
  const majors = [...runs.keys()]
  const head = ['']
  for (const m of majors) {
    head.push(`Node ${m}: ours`, 'MemoryStore', 'best SQLite peer', 'ours ÷ peer')
    if (runs.get(m).meta.stores.some((s) => s.name === NODE_SQLITE && s.status === 'ran')) head.push(NODE_SQLITE, 'ours ÷ node:sqlite')
    if (hasFloor(runs.get(m))) head.push('floor (raw SQLite)', 'time per write: ours ÷ floor')
  }
  const lines = [row(head), row(head.map((_, i) => (i === 0 ? '---' : '---:')))]
  for (const [i, metric] of metrics(runs.get(majors[0])).entries()) {
    const cells = [metric.label]
    for (const m of majors) {
      const results = runs.get(m)
      const rowMetric = metrics(results)[i] ?? metric
      const ours = rowMetric.value(OURS)
      const peer = bestPeer(results, rowMetric)
      cells.push(count(ours), count(rowMetric.value(MEMORY)), peer ? `${count(peer.value)} (${peer.name})` : '–', speedup(rowMetric, ours, peer?.value))
      if (results.meta.stores.some((s) => s.name === NODE_SQLITE && s.status === 'ran')) {
        const native = rowMetric.value(NODE_SQLITE)
        cells.push(count(native), speedup(rowMetric, ours, native))
      }
      if (hasFloor(results)) {
        const floor = rowMetric.floor
        cells.push(count(floor), floor && ours ? ratio(floor / ours) : '–')
      }
    }
    lines.push(row(cells))
  }
  return lines
}

function describe(runs) {
  const lines = []
  for (const [major, results] of runs) {
    const { meta } = results
    const peers = meta.stores
      .filter((s) => !s.ours && s.status === 'ran')
      .map((s) => `${s.name} ${[s.version, ...Object.entries(s.drivers ?? {}).map(([k, v]) => `${k} ${v}`)].filter(Boolean).join(', ')}`)
    const skipped = meta.stores.filter((s) => s.status === 'skipped').map((s) => `${s.name} (${s.reason})`)
    lines.push(
      `- Node ${major}: ${meta.node}, ${meta.date.slice(0, 16).replace('T', ' ')} UTC, ${meta.ours.revision ?? ''}, ` +
        `${meta.options.rounds} rounds, \`${meta.command}\`, ${Math.round(meta.seconds / 60)} min. ` +
        `Peers: ${peers.join('; ')}.${skipped.length ? ` Skipped: ${skipped.join('; ')}.` : ''}`,
    )
  }
  return lines
}

function writeSummary(dir, { quick = false } = {}) {
  const runs = newestRuns(dir, { quick })
  if (runs.size === 0) return []
  const first = runs.values().next().value
  const written = []
  const lines = [
    `# Summary: ${first.meta.machine}`,
    '',
    'Medians over interleaved rounds; every ratio is taken within one run (a ratio above 1× means ours is',
    'better: faster, or less delay). "Best SQLite peer" is the best other SQLite store on that row,',
    'node:sqlite (a hand-written store over Node\'s built-in DatabaseSync, bench/stores/node-sqlite.js) apart.',
    '',
    ...table(runs),
    '',
    ...describe(runs),
  ]
  const md = path.join(dir, quick ? 'summary-quick.md' : 'summary.md')
  fs.writeFileSync(md, `${lines.join('\n')}\n`)
  written.push(md)
  for (const [major, results] of runs) {
    const file = path.join(dir, `summary-node${major}${quick ? '-quick' : ''}.svg`)
    fs.writeFileSync(file, svg(results))
    written.push(file)
  }
  return written
}

if (require.main === module) {
  console.log(writeSummary(path.join(__dirname, '..', 'results'), { quick: process.argv.includes('--quick') }).join('\n'))
}

module.exports = { writeSummary }
