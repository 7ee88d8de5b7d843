'use strict'

// results -> latest.md: the headline comparison (ours vs MemoryStore and vs the best
// SQLite peer), then every store's numbers, then how they were measured.

const { count, withSpread, ratio, mb } = require('./format')

const row = (cells) => `| ${cells.join(' | ')} |`
const header = (cells, align) => [row(cells), row(cells.map((_, i) => (i < align ? '---' : '---:')))]
const nice = (n) => Number(n).toLocaleString('en')

/** One headline row: ours, MemoryStore, and the best SQLite peer, with the ratios. */
const comparisonRow = (label, c) =>
  row([
    label,
    count(c.ours),
    count(c.memoryStore),
    ratio(c.vsMemoryStore),
    c.bestSqlitePeer ?? '–',
    count(c.bestSqlitePeerValue),
    ratio(c.vsBestSqlitePeer),
  ])

function headline(results) {
  const { summary, meta } = results
  const lines = [
    '## Ours vs MemoryStore and vs the best SQLite peer',
    '',
    'Throughput medians of this run; a ratio above 1 means ours is faster. The best SQLite peer is the fastest',
    'other SQLite store on that very row (so it can differ from row to row).',
    '',
    ...header(['benchmark', 'ours', 'MemoryStore', 'ours / MemoryStore', 'best SQLite peer', 'its value', 'ours / best peer'], 1),
  ]
  for (const [n, phases] of Object.entries(summary.ratios.api)) {
    for (const [phase, c] of Object.entries(phases)) {
      lines.push(comparisonRow(`API N=${nice(n)}: ${phase} (ops/s)`, c))
    }
  }
  for (const [route, c] of Object.entries(summary.ratios.http)) {
    lines.push(comparisonRow(`HTTP ${route} (req/s)`, c))
  }
  if (lines.length === 6) lines.push('', `(ours did not run${meta.parts.length ? '' : ': no part selected'})`)
  return lines
}

function apiTables(results, names) {
  const lines = []
  for (const [n, byStore] of Object.entries(results.summary.api)) {
    const stores = names.filter((s) => byStore[s])
    const phases = [...new Set(stores.flatMap((s) => Object.keys(byStore[s].phases ?? {})))]
    const cell = (s, phase, f) => {
      const p = byStore[s].phases?.[phase]
      if (!p) return '–'
      if (p.errors && !p.opsPerSec) return 'error'
      if (p.skipped) return 'n/a'
      return f(p)
    }
    lines.push('', `## Store API, N = ${nice(n)}`, '', 'Operations per second, median (min–max over rounds):', '')
    lines.push(...header(['operation', ...stores], 1))
    for (const phase of phases) lines.push(row([phase, ...stores.map((s) => cell(s, phase, (p) => withSpread(p.opsPerSec)))]))
    lines.push('', 'Latency from call to callback, p50 / p99 (µs):', '')
    lines.push(...header(['operation', ...stores], 1))
    for (const phase of phases) {
      lines.push(row([phase, ...stores.map((s) => cell(s, phase, (p) => `${count(p.p50us)} / ${count(p.p99us)}`))]))
    }
    const writes = phases.filter((p) => /^(set|touch).* c64$/.test(p) || p.includes('paced'))
    lines.push(
      '',
      'Event-loop delay, p99 / max (ms), during the writes at concurrency 64 (a saturating closed loop: the',
      'loop is busy by design) and during sets paced at a steady rate (raw: an idle loop reads ~1.1 ms):',
      '',
    )
    lines.push(...header(['phase', ...stores], 1))
    for (const phase of writes) {
      lines.push(
        row([phase, ...stores.map((s) => cell(s, phase, (p) => `${count(p.loopDelayP99Ms)} / ${count(p.loopDelayMaxMs)}`))]),
      )
    }
    lines.push('', `After populating ${nice(n)} sessions:`, '')
    lines.push(...header(['', ...stores], 1))
    const metric = (label, f) => lines.push(row([label, ...stores.map((s) => f(byStore[s]))]))
    metric('RSS (MB)', (e) => (e.rssMB ? count(e.rssMB.median) : '–'))
    metric('RSS growth from the empty store (MB)', (e) => (e.rssDeltaMB ? count(e.rssDeltaMB.median) : '–'))
    metric('database file (MB)', (e) => (e.dbBytes ? mb(e.dbBytes.median) : '–'))
    metric('-wal file (MB)', (e) => (e.walBytes ? mb(e.walBytes.median) : '–'))
    if (stores.some((s) => byStore[s].serverRssMB)) {
      metric('redis-server RSS (MB)', (e) => (e.serverRssMB ? count(e.serverRssMB.median) : '–'))
    }
    for (const s of stores) {
      for (const e of byStore[s].errors ?? []) lines.push('', `${s} failed: ${e}`)
      for (const [phase, p] of Object.entries(byStore[s].phases ?? {})) {
        for (const e of p.errors ?? []) lines.push('', `${s}, ${phase}: error ${e}`)
      }
    }
  }
  return lines
}

function pruneTable(results, names) {
  const { prune } = results.summary
  const stores = names.filter((s) => prune[s])
  if (!stores.length) return []
  const lines = ['', `## Prune of ${nice(results.meta.options.pruneN)} expired sessions`, '']
  lines.push('Each store\'s own cleanup function; the event loop is sampled while it runs.', '')
  lines.push(...header(['store', 'time (ms)', 'event-loop delay p99 / max (ms)', 'live sessions left (expected)'], 1))
  for (const s of stores) {
    const e = prune[s]
    if (e.ms) {
      lines.push(
        row([
          s,
          withSpread(e.ms),
          `${count(e.loopDelayP99Ms)} / ${count(e.loopDelayMaxMs)}`,
          `${[...new Set(e.remaining)].join(', ')} (${e.expectedRemaining})`,
        ]),
      )
    } else {
      lines.push(row([s, e.skipped ? `skipped: ${e.skipped}` : 'failed', '', '']))
    }
    for (const err of e.errors ?? []) lines.push('', `${s} failed: ${err}`)
  }
  return lines
}

/** Ours against the floor (bench/floor.rs): the same SQLite work with no binding. */
function floorTable(results) {
  const floor = results.summary.floor ?? {}
  const sizes = Object.keys(floor).filter((n) => floor[n].phases)
  if (!sizes.length) return []
  const lines = ['', '## Ours against the raw SQLite floor', '']
  lines.push(
    'The floor is the store\'s own statements, pragmas and batches (1 in autocommit, 64 in one transaction) run',
    'from Rust with no Node-API, no JavaScript and no harness (bench/floor.rs). Time per write: ours ÷ floor.',
    '',
  )
  lines.push(...header(['write', 'floor (ops/s)', 'ours (ops/s)', 'ours ÷ floor', 'floor p50 / p99 (µs)'], 1))
  for (const n of sizes) {
    for (const [phase, f] of Object.entries(floor[n].phases)) {
      const ours = results.summary.api[n]?.['express-sqlite-native']?.phases?.[phase]?.opsPerSec?.median
      const value = f.opsPerSec?.median
      lines.push(
        row([`${phase}, N=${nice(n)}`, count(value), count(ours), value && ours ? ratio(value / ours) : '–', `${count(f.p50us)} / ${count(f.p99us)}`]),
      )
    }
  }
  return lines
}

function httpTable(results, names) {
  const { http } = results.summary
  const targets = ['none', ...names].filter((t) => http[t])
  if (!targets.length) return []
  const label = (t) => (t === 'none' ? 'no sessions (ceiling)' : t)
  const routes = [...new Set(targets.flatMap((t) => Object.keys(http[t].routes)))]
  const { options } = results.meta
  const lines = [
    '',
    '## HTTP through Express',
    '',
    `autocannon, ${options.connections} connections on 127.0.0.1, ${options.httpSeconds} s per route, ` +
      `${options.users} logged-in users rotated, ${nice(options.httpSessions)} other sessions in the store.`,
    '',
    'Requests per second, median (min–max over rounds):',
    '',
    ...header(['route', ...targets.map(label)], 1),
  ]
  for (const route of routes) {
    lines.push(row([route, ...targets.map((t) => withSpread(http[t].routes[route]?.reqPerSec))]))
  }
  lines.push('', 'Latency p50 / p99 (ms):', '', ...header(['route', ...targets.map(label)], 1))
  for (const route of routes) {
    lines.push(
      row([route, ...targets.map((t) => (http[t].routes[route] ? `${http[t].routes[route].p50ms} / ${http[t].routes[route].p99ms}` : '–'))]),
    )
  }
  for (const t of targets) {
    const e = http[t]
    const bad = Object.entries(e.routes).filter(([, r]) => r.errors)
    if (bad.length) lines.push('', `${label(t)}: failed requests: ${bad.map(([route, r]) => `${route} ${r.errors}`).join(', ')}`)
    if (e.readWithoutSession) lines.push('', `${label(t)}: ${e.readWithoutSession} reads found no session (a lost or refused session)`)
    for (const err of e.errors ?? []) lines.push('', `${label(t)} failed: ${err}`)
  }
  return lines
}

function setupSection(meta) {
  const lines = ['', '## Stores', '', ...header(['store', 'version', 'durable', 'how it is constructed', 'notes'], 5)]
  for (const s of meta.stores) {
    const version = [s.version, ...Object.entries(s.drivers ?? {}).map(([k, v]) => `${k} ${v ?? '?'}`)].join(', ')
    const notes = [...(s.notes ?? []), ...(s.status === 'skipped' ? [`**skipped: ${s.reason}**`] : [])].join('; ')
    lines.push(row([s.name, version, s.durable ? 'yes' : 'no', `\`${s.setup}\``, notes]))
  }
  return lines
}

function methodSection(meta) {
  const o = meta.options
  return [
    '',
    '## Method',
    '',
    `- Each store runs in a fresh process per measurement, on a fresh file in a temp dir; ${o.rounds} round(s), the stores interleaved (order rotated each round); medians with min–max over rounds.`,
    `- Store API: N sessions of ~${meta.sessionBytes} bytes of JSON (express-session Cookie + user) are written through the store's own set() (durability relaxed while populating only, see README), then each operation runs for ${o.budgetMs} ms at concurrency 1 (each callback awaited) and 64 (64 in flight). set-new runs after the other phases so the others see N sessions; destroy runs last.`,
    '- Each call is issued from its own event-loop task, as a server runs each request; a store that works on the main thread (better-sqlite3, node:sqlite, knex\'s JS) shows it as event-loop delay.',
    '- Ratios compare medians from this run only; MemoryStore is the in-process, non-durable ceiling.',
  ]
}

function markdown(results) {
  const { meta } = results
  const names = meta.stores.filter((s) => s.status === 'ran').map((s) => s.name)
  const lines = [
    `# Session store benchmark: ${meta.date.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `express-sqlite-native ${meta.ours.version} (${meta.ours.revision ?? 'no git'}), Node ${meta.node}, ${meta.machine}.`,
    `Command: \`${meta.command}\`${meta.options.quick ? ' (quick smoke run: one round, short phases; indicative only)' : ''}.`,
    `Took ${Math.round(meta.seconds)} s.`,
    '',
    ...headline(results),
    ...apiTables(results, names),
    ...floorTable(results),
    ...pruneTable(results, names),
    ...httpTable(results, names),
    ...setupSection(meta),
    ...methodSection(meta),
    '',
  ]
  return lines.join('\n')
}

module.exports = { markdown }
