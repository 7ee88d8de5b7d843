'use strict'

// Memory soak: one million mixed operations on one store, then many open/close cycles,
// printing RSS along the way. Run on demand: `node scripts/soak.js [operations]`.
// Memory should stay flat once SQLite's page cache and V8's heap have warmed up.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { SQLiteStore } = require('..')

const total = Number(process.argv[2] || 1_000_000)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-soak-'))
const mb = () => Math.round(process.memoryUsage().rss / 1048576)
const session = (i) => ({ cookie: { maxAge: i % 7 === 0 ? 5 : 600_000 }, user: { id: i, name: `user${i}` }, pad: 'x'.repeat(300) })

async function mixed(store) {
  const inFlight = 64
  let issued = 0
  const samples = []
  async function lane() {
    while (issued < total) {
      const i = issued++
      const sid = `s${i % 20_000}`
      switch (i % 5) {
        case 0:
        case 1:
          await store.set(sid, session(i))
          break
        case 2:
          await store.get(sid)
          break
        case 3:
          await store.touch(sid, session(i))
          break
        default:
          await store.destroy(sid)
      }
      if (i % 100_000 === 0) samples.push(`${i}: ${mb()} MB`)
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane))
  await store.prune()
  return samples
}

;(async () => {
  global.gc?.()
  const start = mb()
  const store = new SQLiteStore(path.join(dir, 'soak.db'), { pruneInterval: 1 })
  const began = Date.now()
  const samples = await mixed(store)
  store.close()
  console.log(`${total} mixed operations in ${Date.now() - began} ms; RSS by operation count: ${samples.join(', ')}`)
  const afterOps = mb()
  for (let cycle = 0; cycle < 2000; cycle++) {
    const s = new SQLiteStore(path.join(dir, `cycle${cycle % 10}.db`), { pruneInterval: 60 })
    await s.set('x', session(cycle))
    await s.get('x')
    s.close()
  }
  global.gc?.()
  console.log(`RSS start ${start} MB, after operations ${afterOps} MB, after 2000 open/close cycles ${mb()} MB`)
  fs.rmSync(dir, { recursive: true, force: true })
})()
