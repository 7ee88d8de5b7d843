'use strict'

// Durability: a writer killed with SIGKILL at a random moment loses no acknowledged
// session, and the file stays intact after every kill. 50 kills: plain writes, bursts
// of concurrent writes (group commit) and writes while prunes run back to back.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { SQLiteStore } = require('..')
const { tempDb, inspect, sleep } = require('./helpers')

const LEASES = 'express_sqlite_native_leases'
/** Expired rows a prune-mode writer starts with: its first prune runs several batches (~20-40 ms). */
const OLD_ROWS = 10_000

/**
 * Starts a writer, kills it `afterMs` after it says it is ready (with `afterPrune`, after
 * its first prune has started), and reads what it printed.
 */
function killedWriter(file, mode, run, afterMs, afterPrune) {
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'crash-writer.js'), file, mode, run, OLD_ROWS], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  child.stderr.on('data', (chunk) => (err += chunk))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const ready = Promise.race([waitFor(() => out.includes('ready\n')), exited])
  return ready
    .then(() => assert.ok(out.includes('ready\n'), `run ${run} (${mode}) never got ready: ${err}`))
    .then(() => afterPrune && Promise.race([waitFor(() => out.includes('prune-start\n'), 1), exited]))
    .then(() => sleep(afterMs))
    .then(() => child.kill('SIGKILL'))
    .then(() => exited)
    .then((exit) => {
      const lines = out.split('\n')
      // A partial last line was cut by the kill mid-write: not an ack the parent saw whole.
      if (!out.endsWith('\n')) lines.pop()
      const markers = lines.filter((l) => /^(prune|batch)-(start|end)/.test(l))
      return {
        exit,
        stderr: err,
        acked: lines.filter((l) => l.startsWith('ack ')).map((l) => l.slice(4)),
        last: markers.length ? markers[markers.length - 1].split(' ')[0] : null,
        prunesCompleted: lines.filter((l) => l.startsWith('prune-end ')).length,
      }
    })
}

async function waitFor(condition, stepMs = 10) {
  for (let i = 0; i < 10_000 / stepMs && !condition(); i++) await sleep(stepMs)
}

test('50 SIGKILLs: every acknowledged session survives and integrity_check passes after each', async (t) => {
  const file = tempDb()
  new SQLiteStore(file).close()
  const modes = ['serial', 'burst', 'prune']
  const counts = { kills: 0, pruneKills: 0, burstKills: 0, duringPrune: 0, leaseHeld: 0, duringBatch: 0, checked: 0, pruned: 0, prunesCompleted: 0 }
  for (let run = 0; run < 50; run++) {
    const mode = modes[run % modes.length]
    // Every other prune-mode kill is aimed at the first prune: after the first few, a
    // prune takes a few hundred rows in a few ms, which a kill at a random moment of
    // the first 250 ms (all other runs) rarely lands in.
    const aimed = mode === 'prune' && run % 2 === 1
    const afterMs = Math.floor(Math.random() * (aimed ? 15 : 250))
    const { exit, acked, stderr, last, prunesCompleted } = await killedWriter(file, mode, `r${run}`, afterMs, aimed)
    assert.equal(exit.signal, 'SIGKILL', `run ${run} (${mode}) was killed, not failed: ${stderr}`)
    counts.kills++
    counts.prunesCompleted += prunesCompleted
    if (mode === 'burst') counts.burstKills++
    if (mode === 'burst' && last === 'batch-start') counts.duringBatch++
    // The file as the kill left it (another library opens it and recovers the WAL).
    assert.deepEqual(inspect(file).all('PRAGMA integrity_check'), [{ integrity_check: 'ok' }], `run ${run} (${mode})`)
    if (mode === 'prune') {
      counts.pruneKills++
      if (last === 'prune-start') counts.duringPrune++
      // The expired rows the writer started with: those gone were deleted by its
      // prunes in batches that committed before the kill (only this run's prunes touch
      // them: later runs start after this check, and the parent never prunes).
      const left = inspect(file).get(`SELECT COUNT(*) AS n FROM Sessions WHERE id GLOB 'r${run}-old-*'`).n
      counts.pruned += OLD_ROWS - left
      // A lease still held by the dead writer shows its upkeep thread was mid-prune in
      // SQLite itself, not just that JS was waiting for an answer.
      // The first prune creates the lease table: a writer killed before any prune
      // reached it leaves none, and so no lease.
      const leases = inspect(file).get(`SELECT COUNT(*) AS n FROM sqlite_master WHERE name = '${LEASES}'`).n
      const held = leases === 1 ? inspect(file).all(`SELECT owner FROM ${LEASES}`) : []
      if (held.length > 0) {
        counts.leaseHeld++
        // It would block every prune for 5 minutes (the lease's lifetime, for holders
        // that die); expire it now so the next run's prunes really delete.
        inspect(file).run(`DELETE FROM ${LEASES}`)
      }
    }
    const store = new SQLiteStore(file, { pruneInterval: false })
    const stored = new Set(await store.ids())
    for (const sid of acked) assert.ok(stored.has(sid), `run ${run} (${mode}): acknowledged ${sid} survived`)
    for (const sid of acked.slice(-3)) assert.equal((await store.get(sid)).run, `r${run}`)
    // Prunes take the oldest expired rows first: clear what this writer left so that the
    // next one's prunes work on its own rows (and the file does not keep growing).
    if (mode === 'prune') await store.prune()
    store.close()
    counts.checked += acked.length
  }
  const summary =
    `${counts.kills} kills; ${counts.duringPrune} during a prune (${counts.leaseHeld} with the prune lease still held), ` +
    `${counts.duringBatch} during a batch of 64 concurrent writes; ${counts.checked} acknowledged sessions checked, all present; ` +
    `${counts.prunesCompleted} prunes completed before the kills, which had deleted ${counts.pruned} of the ` +
    `${counts.pruneKills * OLD_ROWS} expired rows the pruning writers started with; integrity_check ok after every kill`
  t.diagnostic(summary)
  assert.ok(counts.duringPrune >= 5, `only ${counts.duringPrune} of ${counts.pruneKills} prune-mode kills landed during a prune`)
  assert.ok(counts.leaseHeld >= 5, `only ${counts.leaseHeld} kills left the prune lease held`)
  assert.ok(counts.duringBatch >= 5, `only ${counts.duringBatch} of ${counts.burstKills} burst-mode kills landed during a batch`)
  assert.ok(counts.pruned > 0, 'the writers deleted rows (their prunes were not all skipped)')
  assert.ok(counts.checked > 1000, `${counts.checked} acknowledged writes`)
})
