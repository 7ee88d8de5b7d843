'use strict'

// Runs the whole benchmark (see README.md): every store that can run here, in
// interleaved rounds, through the store API (worker.js per store and N), a prune of
// expired sessions, and HTTP through Express (http-app.js per store). Then writes
// results/<date>-<node version>.json, results/latest.md and results/latest.svg.
// Usage: node run.js [--quick] [--stores=a,b] [--n=10000] ... (--help)

const os = require('node:os')
const path = require('node:path')
const { parseArgs, USAGE } = require('./lib/cli')
const { runInChild } = require('./lib/child')
const { startRedisServer } = require('./lib/redis-server')
const { startRqlite } = require('./lib/rqlite-server')
const { checkoutRevision, packageVersion } = require('./lib/versions')
const { sessionData } = require('./lib/session-data')
const { stores, findStore } = require('./stores')
const { httpScenario } = require('./scenarios/http')
const { buildFloor, runFloor } = require('./lib/floor')
const { writeReports } = require('./report')
const { markdown } = require('./report/markdown')

const WORKER = path.join(__dirname, 'worker.js')
const started = Date.now()
const log = (...parts) => console.log(`[${Math.round((Date.now() - started) / 1000)}s]`, ...parts)

/** Store modules to run, and why the others are left out. */
function selectStores(wanted) {
  const chosen = wanted ? wanted.map((key) => findStore(key) ?? key) : stores
  const unknown = chosen.filter((s) => typeof s === 'string')
  if (unknown.length) throw new Error(`unknown store(s): ${unknown.join(', ')} (see --list)`)
  return stores.map((s) => {
    if (!chosen.includes(s)) return { module: s, status: 'not selected' }
    const available = s.available()
    return available === true ? { module: s, status: 'ran' } : { module: s, status: 'skipped', reason: available }
  })
}

/** The round's store order: rotated each round so no store always runs first or last. */
const rotate = (list, by) => list.map((_, i) => list[(i + by) % list.length])

async function main() {
  const options = parseArgs(process.argv.slice(2))
  if (options.help) return console.log(USAGE)
  const selection = selectStores(options.stores)
  if (options.list) {
    for (const s of selection) console.log(`${s.module.id.padEnd(30)} ${s.module.name.padEnd(30)} ${s.reason ?? 'can run'}`)
    return
  }

  const env = { NODE_ENV: 'production' }
  let redis
  const redisEntry = selection.find((s) => s.module.needsRedis && s.status === 'ran')
  if (redisEntry) {
    try {
      redis = await startRedisServer()
      env.BENCH_REDIS_URL = redis.url
      log(`redis-server on ${redis.url}`)
    } catch (error) {
      Object.assign(redisEntry, { status: 'skipped', reason: `redis-server did not start: ${error.message}` })
    }
  }
  const clusters = []
  for (const entry of selection.filter((s) => s.module.needsRqlite && s.status === 'ran')) {
    try {
      const cluster = await startRqlite(entry.module.needsRqlite)
      clusters.push(cluster)
      env[`BENCH_RQLITE${entry.module.needsRqlite}_URL`] = cluster.url
      log(`rqlite ×${entry.module.needsRqlite} on ${cluster.url}`)
    } catch (error) {
      Object.assign(entry, { status: 'skipped', reason: `rqlited did not start: ${error.message}` })
    }
  }
  for (const s of selection.filter((s) => s.status === 'skipped')) log(`skipping ${s.module.name}: ${s.reason}`)
  const running = selection.filter((s) => s.status === 'ran').map((s) => s.module)

  const raw = { floor: [], api: [], prune: [], http: [] }
  let floor
  if (options.parts.includes('floor')) {
    try {
      log('building the floor (cargo build --release --example floor)')
      floor = buildFloor()
    } catch (error) {
      log(`skipping the floor: ${error.message.split('\n')[0]}`)
      raw.floor.push({ round: 1, skipped: `cannot build bench/floor.rs: ${error.message.split('\n')[0]}` })
    }
  }
  // One record per measurement; a failure is recorded and the run goes on.
  const attempt = async (list, record, work) => {
    try {
      list.push({ ...record, result: await work() })
    } catch (error) {
      log(`  failed: ${error.message.split('\n')[0]}`)
      list.push({ ...record, error: (error && error.stack) || String(error) })
    }
  }
  const childOptions = { env }

  for (let round = 1; round <= options.rounds; round++) {
    const order = rotate(running, round - 1)
    if (floor) {
      for (const n of options.sizes) {
        log(`round ${round}/${options.rounds} floor N=${n}`)
        await attempt(raw.floor, { round, n }, async () => runFloor(floor, { n, budgetMs: options.budgetMs }))
      }
    }
    if (options.parts.includes('api')) {
      for (const n of options.sizes) {
        for (const s of order) {
          log(`round ${round}/${options.rounds} API N=${n} ${s.name}`)
          await attempt(raw.api, { round, store: s.name, n }, () =>
            runInChild(WORKER, { scenario: 'api', store: s.id, options: { n, budgetMs: options.budgetMs } }, childOptions),
          )
        }
      }
    }
    if (options.parts.includes('prune')) {
      for (const s of order) {
        if (s.noPrune) {
          if (round === 1) raw.prune.push({ round, store: s.name, result: { skipped: s.noPrune } })
          continue
        }
        log(`round ${round}/${options.rounds} prune ${options.pruneN} ${s.name}`)
        await attempt(raw.prune, { round, store: s.name }, () =>
          runInChild(WORKER, { scenario: 'prune', store: s.id, options: { pruneN: options.pruneN } }, childOptions),
        )
      }
    }
    if (options.parts.includes('http')) {
      for (const s of [null, ...order]) {
        const target = s ? s.name : 'none'
        log(`round ${round}/${options.rounds} HTTP ${target}`)
        await attempt(raw.http, { round, target }, () => httpScenario(s && s.id, options, env))
      }
    }
  }
  redis?.stop()
  for (const cluster of clusters) await cluster.stop()

  const cpus = os.cpus()
  const meta = {
    date: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    command: `node run.js ${process.argv.slice(2).join(' ')}`.trim(),
    node: process.version,
    machine: `${cpus.length} × ${cpus[0]?.model ?? 'CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.platform()} ${os.release()}`,
    ours: { version: findStore('native').version, revision: checkoutRevision() },
    options,
    sessionBytes: JSON.stringify(sessionData(0)).length,
    tools: Object.fromEntries(['express', 'express-session', 'autocannon'].map((p) => [p, packageVersion(p)])),
    stores: selection
      .filter((s) => s.status !== 'not selected')
      .map(({ module: m, status, reason }) => ({
        id: m.id,
        name: m.name,
        ours: Boolean(m.ours),
        durable: m.durable,
        sqlite: m.sqlite,
        version: m.version,
        drivers: m.drivers,
        setup: m.setup,
        notes: m.notes,
        status,
        reason,
      })),
  }
  const { results, written } = writeReports(path.resolve(__dirname, options.out ?? 'results'), meta, raw)
  console.log(`\n${markdown(results).split('\n## Store API')[0]}`)
  log(`wrote\n  ${written.join('\n  ')}`)
  // Some stores keep intervals that cannot be cleared (see stores/); nothing is pending.
  process.exit(0)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
