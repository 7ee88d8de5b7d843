'use strict'

// On-demand measurements for the expiry work (not a test): a prune of 100,000 expired
// sessions (time, and the event-loop delay while it runs), mixed-operation
// throughput of 1, 2 and 4 processes sharing one file, and the WAL's size under a long
// run of sustained writes (peak, at the end, after close). `node scripts/measure-upkeep.js`

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const { SQLiteStore } = require('..')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-measure-'))

async function pruneOf100k() {
  const store = new SQLiteStore(path.join(dir, 'prune.db'), { pruneInterval: false })
  const writes = []
  for (let i = 0; i < 100_000; i++) {
    writes.push(store.set(`s${i}`, { cookie: { maxAge: 1 }, user: { id: i }, pad: 'x'.repeat(400) }))
    if (writes.length === 1000) await Promise.all(writes.splice(0))
  }
  await Promise.all(writes)
  await new Promise((resolve) => setTimeout(resolve, 20))
  const delay = monitorEventLoopDelay({ resolution: 1 })
  // Keep the loop busy with small reads meanwhile, as a server would be: one per turn of
  // the event loop, as requests arrive (a chain of reads answered on the JS thread would
  // keep the loop from its timers by itself, and that is what would be measured).
  let reads = 0
  let pruning = true
  const reader = (async () => {
    while (pruning) {
      await store.get(`s${reads++ % 100_000}`)
      await new Promise(setImmediate)
    }
  })()
  delay.enable()
  const started = process.hrtime.bigint()
  const deleted = await store.prune()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  pruning = false
  await reader
  delay.disable()
  store.close()
  return { deleted, ms: Math.round(ms), reads, loopDelayP99Ms: delay.percentile(99) / 1e6, loopDelayMaxMs: delay.max / 1e6 }
}

/** A million session writes of ~460 bytes (~440 MiB of JSON) over 100,000 sessions, 1,000
 * at a time, watching the WAL. */
async function sustainedWrites(total = 1_000_000) {
  const file = path.join(dir, 'wal.db')
  const store = new SQLiteStore(file, { pruneInterval: false })
  const walSize = () => {
    try {
      return fs.statSync(`${file}-wal`).size
    } catch {
      return 0
    }
  }
  let peak = 0
  const sample = () => (peak = Math.max(peak, walSize()))
  // Between batches and on a timer: the WAL could peak inside a batch.
  const sampler = setInterval(sample, 10)
  const payload = 'x'.repeat(400)
  const started = Date.now()
  let bytes = 0
  for (let done = 0; done < total; done += 1000) {
    const writes = []
    for (let i = done; i < done + 1000; i++) {
      const session = { cookie: { maxAge: 3_600_000 }, user: { id: i }, payload }
      bytes += JSON.stringify(session).length
      writes.push(store.set(`s${i % 100_000}`, session))
    }
    await Promise.all(writes)
    sample()
  }
  const ms = Date.now() - started
  clearInterval(sampler)
  const { checkpoints, fileBytes } = await store.stats()
  const atEnd = walSize()
  store.close()
  const mib = (n) => Math.round((n / 1048576) * 10) / 10
  return {
    writes: total,
    sessionMiB: mib(bytes),
    ms,
    writesPerSecond: Math.round((total * 1000) / ms),
    walPeakMiB: mib(peak),
    walAtEndMiB: mib(atEnd),
    walAfterCloseBytes: walSize(),
    dbFileMiB: mib(fileBytes),
    checkpoints,
  }
}

function worker(file, id, ops) {
  const script = path.join(__dirname, '..', '__test__', 'fixtures', 'mixed-worker.js')
  const child = spawn(process.execPath, [script, file, String(id), String(ops), id === 0 ? 'prune' : 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  return new Promise((resolve) => child.on('exit', () => resolve(JSON.parse(out))))
}

async function processes(count, opsEach) {
  const file = path.join(dir, `procs${count}.db`)
  new SQLiteStore(file).close()
  const started = Date.now()
  const reports = await Promise.all(Array.from({ length: count }, (_, id) => worker(file, id, opsEach)))
  const ms = Date.now() - started
  const errors = reports.flatMap((r) => r.errors).length
  // Each worker reports what it did (at least opsEach, and at least 500 ms of work).
  const operations = reports.reduce((sum, r) => sum + r.ops, 0)
  return { processes: count, operations, ms, opsPerSecond: Math.round((operations * 1000) / ms), errors }
}

;(async () => {
  console.log('prune of 100k expired sessions:', JSON.stringify(await pruneOf100k()))
  for (const count of [1, 2, 4]) console.log(JSON.stringify(await processes(count, 20_000)))
  console.log('sustained writes (1M writes over 100k sessions):', JSON.stringify(await sustainedWrites()))
  fs.rmSync(dir, { recursive: true, force: true })
})()
