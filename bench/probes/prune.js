'use strict'

// The bench's prune scenario (scenarios/prune.js) for one store, printed. With a build
// that has phase-timing.patch applied (--store=native-baseline), stderr also shows the
// prune's transactions and the gaps after them.
//
//   node prune.js [--store=native-baseline|node-sqlite|...]

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { pruneScenario } = require('../scenarios/prune')
const { storeUnderTest } = require('./common')

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'probe-prune-'))
  const storeModule = storeUnderTest()
  try {
    const r = await pruneScenario(storeModule, dir, { pruneN: 100_000 })
    if (r.skipped) throw new Error(`${storeModule.name}: ${r.skipped}`)
    console.log(`${storeModule.name}: prune of ${r.deleted} expired sessions: ${r.ms} ms, ${r.remaining} live left; loop delay p99 ${r.loopDelay.p99Ms} ms, max ${r.loopDelay.maxMs} ms (sampled every 1 ms)`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main()
