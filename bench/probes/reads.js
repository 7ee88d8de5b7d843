'use strict'

// Reads of stored sessions through the bench's loop, read uniformly (every session once
// per pass, the bench's get-hit) and Zipf-like (the bench's get-hit zipf), at 1 and 64
// in flight, with the share our session cache answered (stats().cachedReads). Any store
// of stores/ by id or name (node-sqlite needs Node 22.13+).
//
//   node reads.js --n=100000 [--store=native|node-sqlite|memory|...]

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { closedLoop } = require('../lib/closed-loop')
const { invoke } = require('../lib/invoke')
const { populate } = require('../lib/populate')
const { sidFor } = require('../lib/session-data')
const { zipfRanks } = require('../scenarios/api')
const { flags, storeUnderTest } = require('./common')

async function main() {
  const { n = 100_000, seconds = 3 } = flags()
  const storeModule = storeUnderTest()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'probe-reads-'))
  const handle = await storeModule.create(dir)
  try {
    await populate(handle, n)
    const sids = Array.from({ length: n }, (_, i) => sidFor('sid', i))
    const existing = (k) => sids[(k * 7919) % n]
    const zipf = zipfRanks(n, 1 << 16).map((rank) => existing(rank))
    const cached = async () => (typeof handle.store.stats === 'function' ? (await handle.store.stats()).cachedReads : undefined)
    await closedLoop((k) => invoke(handle.store, 'get', [existing(k)]), { concurrency: 1, maxOps: 500 })
    for (const [pattern, pick] of [['uniform', existing], ['zipf', (k) => zipf[k % zipf.length]]]) {
      for (const c of [1, 64]) {
        const before = await cached()
        const r = await closedLoop((k) => invoke(handle.store, 'get', [pick(k)]), { concurrency: c, budgetMs: seconds * 1000 })
        const after = await cached()
        const share = before === undefined ? '' : `, ${Math.round((100 * (after - before)) / r.ops)} % from the session cache`
        console.log(`${storeModule.name} N=${n} get ${pattern} c${c}: ${(r.opsPerSec / 1000).toFixed(1)}k/s = ${(1e6 / r.opsPerSec).toFixed(1)} µs a read${share}`)
      }
    }
  } finally {
    await handle.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main()
