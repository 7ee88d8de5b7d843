'use strict'

// Several processes on one file, one of them pruning: no SQLITE_BUSY reaches users,
// no acknowledged write is lost, and the file stays intact.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { SQLiteStore } = require('..')
const { tempDb, inspect } = require('./helpers')

function runWorker(file, id, ops, prune) {
  const script = path.join(__dirname, 'fixtures', 'mixed-worker.js')
  const child = spawn(process.execPath, [script, file, String(id), String(ops), prune ? 'prune' : 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`worker ${id} exited ${code}`)))),
  )
}

test('4 processes, 3000 mixed operations each, one pruning: no busy errors, no lost writes, intact file', async (t) => {
  const file = tempDb()
  new SQLiteStore(file).close() // create the file and table before the race
  const reports = await Promise.all([0, 1, 2, 3].map((id) => runWorker(file, id, 3000, id === 0)))
  const errors = reports.flatMap((r) => r.errors)
  assert.deepEqual(errors, [], 'no error of any kind reached a caller')
  const store = new SQLiteStore(file, { pruneInterval: false })
  let checked = 0
  for (const report of reports) {
    for (const [key, value] of Object.entries(report.expected)) {
      const session = await store.get(key)
      assert.equal(session === null ? null : session.value, value, key)
      checked++
    }
  }
  await store.close()
  assert.ok(checked >= 250, `${checked} keys checked`)
  assert.deepEqual(inspect(file).all('PRAGMA integrity_check'), [{ integrity_check: 'ok' }])

  // The pruning process pruned while the others worked: short-lived sessions (5 ms)
  // were written by all four, and only it prunes, so every one of them gone from the
  // file is one it counted, and the count it gives is exactly what is gone.
  const { pruning } = reports[0]
  const tmpWritten = reports.reduce((sum, r) => sum + r.tmpWritten, 0)
  const tmpLeft = inspect(file).get("SELECT COUNT(*) AS n FROM Sessions WHERE id GLOB 'w*-tmp-*'").n
  assert.ok(tmpWritten >= 400, `${tmpWritten} short-lived sessions written for the pruner`)
  assert.ok(pruning.duringRun.pruneRuns >= 1 && pruning.duringRun.rowsPruned > 0, JSON.stringify(pruning))
  assert.equal(pruning.total.rowsPruned, tmpWritten - tmpLeft, JSON.stringify({ pruning, tmpWritten, tmpLeft }))
  for (const report of reports.slice(1)) assert.equal(report.pruning, undefined)
  const slowest = Math.max(...reports.map((r) => r.elapsedMs))
  t.diagnostic(
    `${reports.reduce((sum, r) => sum + r.ops, 0)} operations in ${slowest} ms across 4 processes; ${checked} keys verified; ` +
      `pruned during the run: ${pruning.duringRun.rowsPruned} rows in ${pruning.duringRun.pruneRuns} prunes ` +
      `(${pruning.total.rowsPruned} of ${tmpWritten} short-lived sessions in all, ${tmpLeft} left)`,
  )
})

test('a session changed by another process is read fresh at once (the read cache never serves stale data)', async (t) => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: false })
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'peer-process.js'), file], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  t.after(() => child.exitCode === null && child.kill())
  const replies = []
  let waiting = null
  child.on('message', (message) => (waiting ? (waiting(message), (waiting = null)) : replies.push(message)))
  const ask = (message) =>
    new Promise((resolve) => {
      waiting = resolve
      child.send(message)
    })
  await new Promise((resolve) => (replies.length ? resolve() : (waiting = resolve)))
  const cookie = { maxAge: 3_600_000 }
  const ROUNDS = 300
  const sids = ['p0', 'p1', 'p2']
  for (let round = 0; round < ROUNDS; round++) {
    const sid = sids[round % sids.length]
    // Ours, then read twice (the second read is the cached one).
    await store.set(sid, { cookie, value: `ours-${round}` })
    assert.equal((await store.get(sid)).value, `ours-${round}`)
    assert.equal((await store.get(sid)).value, `ours-${round}`)
    // Theirs: the very next read here must see it.
    const theirs = round % 3 === 2 ? await ask({ op: 'destroy', sid }) : await ask({ op: 'set', sid, value: `theirs-${round}` })
    assert.equal(theirs.error, null)
    const after = await store.get(sid)
    if (round % 3 === 2) assert.equal(after, null, `round ${round}: destroyed by the other process`)
    else assert.equal(after.value, `theirs-${round}`, `round ${round}`)
    // And the other way round: it sees what we wrote at once.
    await store.set(sid, { cookie, value: `again-${round}` })
    const seen = await ask({ op: 'get', sid })
    assert.equal(seen.session.value, `again-${round}`, `round ${round}: read by the other process`)
  }
  const { cachedReads } = await store.stats()
  assert.ok(cachedReads >= ROUNDS, `${cachedReads} reads answered from the cache`)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.send({ op: 'close' })
  assert.equal(await exited, 0)
  await store.close()
  t.diagnostic(`${ROUNDS} rounds across 2 processes; ${cachedReads} of ${ROUNDS * 3} reads here from the cache`)
})

test('databaseOptions.cacheSize: 0 reads every session from SQLite; the default cache answers repeats; bad sizes are TypeErrors', async () => {
  const file = tempDb()
  const session = { cookie: { maxAge: 3_600_000 }, user: 'u' }
  const uncached = new SQLiteStore(file, { databaseOptions: { cacheSize: 0 }, pruneInterval: false })
  await uncached.set('s', session)
  for (let i = 0; i < 3; i++) assert.equal((await uncached.get('s')).user, 'u')
  assert.equal(await uncached.touch('s', session), 'OK')
  const stats = await uncached.stats()
  assert.equal(stats.cachedReads, 0)
  assert.equal(stats.touchesSkipped, 0, 'without the cache the stored expiry is not known: written')
  await uncached.close()

  const cached = new SQLiteStore(file, { pruneInterval: false })
  for (let i = 0; i < 3; i++) assert.equal((await cached.get('s')).user, 'u')
  assert.equal((await cached.stats()).cachedReads, 2, 'the first read filled the cache')
  await cached.close()

  for (const cacheSize of [-1, 1.5, 65537, '64', null]) {
    assert.throws(() => new SQLiteStore(tempDb(), { databaseOptions: { cacheSize } }), (error) => error instanceof TypeError && /cacheSize/.test(error.message), String(cacheSize))
  }
})
