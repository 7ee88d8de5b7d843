'use strict'

// Where a write's time goes: set-overwrite through the bench's own loop and harness
// (lib/closed-loop.js, lib/invoke.js), N sessions, concurrency 1 or 64. Against a
// checkout with phase-timing.patch applied (--store=native-baseline; see ../README.md,
// "Where the time goes") it also times the native call from JS, and the addon prints
// SQLite / identity check / cache per batch on stderr; against the plain build, only
// the total.
//
//   node writes.js --c=1 --seconds=4 --n=10000 [--store=memory|native-baseline]

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { closedLoop } = require('../lib/closed-loop')
const { invoke } = require('../lib/invoke')
const { sessionData, sidFor } = require('../lib/session-data')
const { flags, storeUnderTest } = require('./common')

async function main() {
  const { c = 1, seconds = 4, n = 10_000 } = flags()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'probe-writes-'))
  const storeModule = storeUnderTest()
  const { store, close } = await storeModule.create(dir)
  try {
    await closedLoop((k) => invoke(store, 'set', [sidFor('sid', k), sessionData(k)]), { concurrency: 64, maxOps: n })
    const sids = Array.from({ length: n }, (_, i) => sidFor('sid', i))
    let nativeUs = 0
    let nativeCalls = 0
    let nativeSets = 0
    globalThis.probeNativeRun = (us, jobs) => {
      nativeUs += us
      nativeCalls++
      nativeSets += jobs
    }
    const r = await closedLoop((k) => invoke(store, 'set', [sids[(k * 7919) % n], sessionData(k)]), {
      concurrency: c,
      budgetMs: seconds * 1000,
    })
    const perOp = 1e6 / r.opsPerSec
    // Sets the writer thread committed (when the JS thread could not) are not in the native call's figure.
    const native =
      nativeCalls > 0
        ? `; native call on this thread ${(nativeUs / nativeSets).toFixed(1)} µs a set (${nativeCalls} calls, ${(nativeSets / nativeCalls).toFixed(1)} sets each, ${nativeSets} of ${r.ops} sets)`
        : ''
    console.log(`${storeModule.name} set-overwrite c${c} N=${n}: ${perOp.toFixed(1)} µs a set (p99 ${r.p99us} µs)${native}`)
  } finally {
    await close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main()
