'use strict'

// Memory soak: one million mixed operations on one store, then many open/close cycles,
// printing RSS along the way. Run on demand: `node --expose-gc scripts/soak.js [operations] [cycles]`.
// Memory should stay flat once SQLite's page cache and V8's heap have warmed up.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { SQLiteStore } = require('..')

const total = Number(process.argv[2] || 1_000_000)
const cycles = Number(process.argv[3] || 2000)
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
  global.gc?.()
  const afterOps = mb()
  // Sampled after a GC each time, so that growth here is memory nothing can free.
  const cycleSamples = []
  for (let cycle = 1; cycle <= cycles; cycle++) {
    const s = new SQLiteStore(path.join(dir, `cycle${cycle % 10}.db`), { pruneInterval: 60 })
    await s.set('x', session(cycle))
    await s.get('x')
    s.close()
    if (cycle % 500 === 0) {
      global.gc?.()
      cycleSamples.push(`${cycle}: ${mb()} MB`)
    }
  }
  global.gc?.()
  const afterCycles = mb()
  // Completions answered on the JS thread resolve without turning the event loop, so a
  // loop like this one can run many cycles before what close() releases is collected;
  // an idle moment shows what is really kept (the JS heap; RSS also keeps what malloc
  // holds on to).
  await new Promise((resolve) => setTimeout(resolve, 500))
  global.gc?.()
  const heap = Math.round(process.memoryUsage().heapUsed / 1048576)
  console.log(`RSS by open/close cycle: ${cycleSamples.join(', ')}`)
  console.log(
    `RSS start ${start} MB, after operations ${afterOps} MB, after ${cycles} open/close cycles ${afterCycles} MB, ` +
      `after 500 ms idle ${mb()} MB (JS heap ${heap} MB)`,
  )
  fs.rmSync(dir, { recursive: true, force: true })
})()
