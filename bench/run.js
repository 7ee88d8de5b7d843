'use strict'

// Runs the whole benchmark: every available store, interleaved rounds, the store API at
// N = 10,000 and 100,000, a prune of 100,000 expired sessions, and HTTP through
// Express. Writes results/<date>-node<version>.json, results/latest.md and
// results/latest.svg. Flags: --quick, --rounds=3, --stores=a,b, --n=10000,100000,
// --no-http, --no-api.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { stores } = require('./stores')
const { apiScenarios, pruneScenario } = require('./api')
const { httpScenarios } = require('./http')
const { writeReports } = require('./report')

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=')
    return [k, v ?? true]
  }),
)
const quick = Boolean(args.quick)
const rounds = Number(args.rounds || (quick ? 1 : 3))
const sizes = String(args.n || (quick ? '10000' : '10000,100000')).split(',').map(Number)
const budgetMs = quick ? 300 : 1500
const httpSeconds = quick ? 2 : 4
const pruneN = quick ? 20_000 : 100_000
const wanted = args.stores ? String(args.stores).split(',') : null

const selected = []
const skipped = {}
for (const store of stores) {
  if (wanted && !wanted.includes(store.name)) continue
  const available = store.available ? store.available() : true
  if (available === true) selected.push(store)
  else skipped[store.name] = available
}

const freshDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'esn-bench-'))
const log = (...parts) => console.log(new Date().toISOString().slice(11, 19), ...parts)

async function withStore(store, work) {
  const dir = freshDir()
  const handle = await store.create(dir)
  try {
    return await work(handle, dir)
  } finally {
    await handle.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function main() {
  const raw = { api: {}, prune: {}, http: {} }
  const push = (bucket, keys, value) => {
    let node = bucket
    for (const k of keys.slice(0, -1)) node = node[k] ??= {}
    ;(node[keys.at(-1)] ??= []).push(value)
  }
  for (let round = 1; round <= rounds; round++) {
    if (!args['no-api']) {
      for (const n of sizes) {
        for (const store of selected) {
          log(`round ${round}: API N=${n} ${store.name}`)
          const results = await withStore(store, (handle) => apiScenarios(handle, n, { budgetMs }))
          push(raw.api, [store.name, n], results)
        }
      }
      for (const store of selected.filter((s) => s.prune !== false)) {
        const result = await withStore(store, async (handle) => (handle.prune ? pruneScenario(handle, pruneN) : null))
        if (result) {
          log(`round ${round}: prune of ${pruneN} ${store.name}: ${result.ms} ms`)
          push(raw.prune, [store.name], result)
        }
      }
    }
    if (!args['no-http']) {
      for (const name of ['none', ...selected.map((s) => s.name)]) {
        log(`round ${round}: HTTP ${name}`)
        const dir = freshDir()
        push(raw.http, [name], await httpScenarios(name, dir, { durationSec: httpSeconds }))
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }
  }
  stores.find((s) => s.name === 'connect-redis')?.stopServer?.()
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`,
    rounds,
    sizes,
    pruneN,
    budgetMs,
    httpSeconds,
    versions: Object.fromEntries(selected.map((s) => [s.name, s.version()])),
    skipped,
  }
  const written = writeReports(path.join(__dirname, 'results'), meta, raw)
  log(`wrote ${written.join(', ')}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
