'use strict'

// The bench's prune scenario (scenarios/prune.js) for ours alone, printed. With a build
// that has phase-timing.patch applied, stderr also shows the prune's transactions and
// the gaps after them.
//
//   node prune.js [--root=<checkout>]

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { pruneScenario } = require('../scenarios/prune')
const { openStore } = require('./common')

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'probe-prune-'))
  const storeModule = {
    create(storeDir) {
      const { store, close } = openStore(storeDir)
      const prune = () => new Promise((resolve, reject) => store.prune((error, n) => (error ? reject(error) : resolve(n))))
      return { store, close, prune }
    },
  }
  try {
    const r = await pruneScenario(storeModule, dir, { pruneN: 100_000 })
    console.log(`prune of ${r.deleted} expired sessions: ${r.ms} ms, ${r.remaining} live left; loop delay p99 ${r.loopDelay.p99Ms} ms, max ${r.loopDelay.maxMs} ms (sampled every 1 ms)`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main()
