'use strict'

// What the slowest 1 % of single writes are made of: set-overwrite one at a time, as
// the bench issues them, each call's whole time and its native call's (timed from JS),
// and whether a garbage collection overlapped it. The native call is timed only in a
// checkout with phase-timing.patch applied (--store=native-baseline).
//
//   node tail.js --n=10000 --seconds=5 [--store=native-baseline]

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { performance, PerformanceObserver } = require('node:perf_hooks')
const { invoke } = require('../lib/invoke')
const { sessionData, sidFor } = require('../lib/session-data')
const { flags, storeUnderTest } = require('./common')

const mean = (values) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)

async function main() {
  const { n = 10_000, seconds = 5 } = flags()
  const collections = []
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) collections.push([entry.startTime, entry.startTime + entry.duration])
  })
  observer.observe({ entryTypes: ['gc'] })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'probe-tail-'))
  const { store, close } = await storeUnderTest().create(dir)
  try {
    const sids = Array.from({ length: n }, (_, k) => sidFor('sid', k))
    for (let i = 0; i < n; i += 64) {
      await Promise.all(sids.slice(i, i + 64).map((sid, j) => invoke(store, 'set', [sid, sessionData(i + j)])))
    }
    let nativeUs
    globalThis.probeNativeRun = (us) => {
      nativeUs = us
    }
    const calls = []
    const end = performance.now() + seconds * 1000
    for (let k = 0; performance.now() < end; k++) {
      nativeUs = undefined
      const started = performance.now()
      await invoke(store, 'set', [sids[(k * 7919) % n], sessionData(k)])
      const ended = performance.now()
      calls.push({ us: (ended - started) * 1000, nativeUs, started, ended })
      await new Promise((resolve) => setImmediate(resolve))
    }
    const sorted = calls.map((call) => call.us).sort((a, b) => a - b)
    const p99 = sorted[Math.floor(sorted.length * 0.99)]
    const slow = calls.filter((call) => call.us >= p99)
    const mostlyNative = slow.filter((call) => call.nativeUs !== undefined && call.nativeUs >= call.us / 2)
    const duringGc = slow.filter((call) => collections.some(([from, to]) => from < call.ended && to > call.started))
    console.log(`set-overwrite c1 N=${n}: ${calls.length} sets, p50 ${sorted[sorted.length >> 1].toFixed(0)} µs, p99 ${p99.toFixed(0)} µs`)
    const timed = calls.filter((call) => call.nativeUs !== undefined)
    const native =
      timed.length === 0
        ? 'native call not timed (run against a checkout with phase-timing.patch: --store=native-baseline)'
        : `native call at least half of it in ${mostlyNative.length}; native call over all sets ${mean(timed.map((call) => call.nativeUs)).toFixed(1)} µs`
    console.log(
      `slowest 1 % (${slow.length}, mean ${mean(slow.map((call) => call.us)).toFixed(0)} µs): ` +
        `a garbage collection overlapping in ${duringGc.length}; ${native}`,
    )
  } finally {
    observer.disconnect()
    await close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main()
