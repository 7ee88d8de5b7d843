'use strict'

// Durability: a writer killed with SIGKILL at a random moment loses no acknowledged
// session, and the file stays intact. 50 kills: plain writes, bursts of concurrent
// writes (group commit) and writes during a prune.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { SQLiteStore } = require('..')
const { tempDb, inspect, sleep } = require('./helpers')

function killedWriter(file, mode, run, afterMs) {
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'crash-writer.js'), file, mode, run], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  child.stderr.on('data', (chunk) => (err += chunk))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const started = mode === 'prune' ? waitFor(() => out.includes('ready\n')) : Promise.resolve()
  return started
    .then(() => sleep(afterMs))
    .then(() => child.kill('SIGKILL'))
    .then(() => exited)
    .then((exit) => ({ exit, stderr: err, acked: out.split('\n').filter((l) => l.startsWith('ack ')).map((l) => l.slice(4)) }))
}

async function waitFor(condition) {
  for (let i = 0; i < 400 && !condition(); i++) await sleep(10)
}

test('50 SIGKILLs: every acknowledged session survives and integrity_check passes', async (t) => {
  const file = tempDb()
  new SQLiteStore(file).close()
  const modes = ['serial', 'burst', 'prune']
  let totalAcked = 0
  for (let run = 0; run < 50; run++) {
    const mode = modes[run % modes.length]
    const { exit, acked, stderr } = await killedWriter(file, mode, `r${run}`, 20 + Math.floor(Math.random() * 200))
    assert.equal(exit.signal, 'SIGKILL', `run ${run} (${mode}) was killed, not failed: ${stderr}`)
    const store = new SQLiteStore(file, { pruneInterval: false })
    const stored = new Set(await store.ids())
    for (const sid of acked) assert.ok(stored.has(sid), `run ${run} (${mode}): acknowledged ${sid} survived`)
    for (const sid of acked.slice(-3)) assert.equal((await store.get(sid)).run, `r${run}`)
    store.close()
    totalAcked += acked.length
  }
  assert.deepEqual(inspect(file).all('PRAGMA integrity_check'), [{ integrity_check: 'ok' }])
  assert.ok(totalAcked > 1000, `${totalAcked} acknowledged writes`)
  t.diagnostic(`50 kills survived; ${totalAcked} acknowledged sessions all present`)
})
