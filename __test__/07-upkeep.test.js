'use strict'

// Expiry at scale: background pruning, touch throttling, absolute lifetime, the WAL
// kept bounded, and one prune at a time across processes.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { SQLiteStore } = require('..')
const { tempDb, sessionFor, inspect, sleep } = require('./helpers')

const rowsIn = (file, table = 'Sessions') => inspect(file).get(`SELECT COUNT(*) AS n FROM "${table}"`).n

test('prune deletes exactly the expired rows, on request, and reports the count', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: false })
  const writes = []
  for (let i = 0; i < 1200; i++) {
    const cookie = i % 3 === 0 ? { maxAge: 600_000 } : { expires: new Date(Date.now() + 40) }
    writes.push(store.set(`s${i}`, { cookie, n: i }))
  }
  await Promise.all(writes)
  await sleep(60)
  assert.equal(rowsIn(file), 1200, 'expired rows stay until pruned (pruneInterval: false)')
  assert.equal(await store.prune(), 800)
  assert.equal(rowsIn(file), 400)
  assert.equal(await store.length(), 400)
  assert.equal(await store.prune(), 0)
  store.close()
})

test('pruneInterval prunes in the background (jittered ±50 %)', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: 0.2 })
  for (let i = 0; i < 50; i++) await store.set(`gone${i}`, { cookie: { expires: new Date(Date.now() + 20) } })
  await store.set('kept', sessionFor('kept'))
  let remaining = 51
  for (let waited = 0; waited < 3000 && remaining > 1; waited += 100) {
    await sleep(100)
    remaining = rowsIn(file)
  }
  assert.equal(remaining, 1)
  assert.equal((await store.get('kept')).user, 'kept')
  store.close()
})

test('a prune under way in another process makes this one skip its turn', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: false })
  await store.set('old', { cookie: { expires: new Date(Date.now() + 10) } })
  await sleep(20)
  const db = inspect(file)
  db.run('CREATE TABLE IF NOT EXISTS express_sqlite_native_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL)')
  db.run('INSERT INTO express_sqlite_native_leases VALUES (?, ?, ?)', 'Sessions', 'another-process', Date.now() + 60_000)
  assert.equal(await store.prune(), 0, 'skipped, not waited, not failed')
  assert.equal(rowsIn(file), 1)
  db.run('DELETE FROM express_sqlite_native_leases')
  assert.equal(await store.prune(), 1)
  store.close()
})

test('touchAfter: a touch soon after a write answers OK without writing (the row shows it)', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { touchAfter: 0.3 })
  await store.set('s', sessionFor('s', 10_000))
  const expiresOf = () => inspect(file).get('SELECT expires FROM Sessions WHERE id = ?', 's').expires
  const first = expiresOf()
  assert.equal(await store.touch('s', sessionFor('s', 500_000)), 'OK')
  assert.equal(expiresOf(), first, 'no write within touchAfter')
  assert.equal(await store.touch('missing', sessionFor('m')), 'EXPIRED')
  await sleep(320)
  assert.equal(await store.touch('s', sessionFor('s', 500_000)), 'OK')
  assert.ok(expiresOf() > first + 400_000, 'written once touchAfter has passed')
  store.close()
})

test('disableTouch: touch never writes', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { disableTouch: true })
  await store.set('s', sessionFor('s', 10_000))
  const before = inspect(file).get('SELECT expires, touched FROM Sessions')
  assert.equal(await store.touch('s', sessionFor('s', 500_000)), 'OK')
  assert.deepEqual(inspect(file).get('SELECT expires, touched FROM Sessions'), before)
  assert.equal(await store.touch('nope', sessionFor('n')), 'EXPIRED')
  store.close()
})

test('maxLifetime ends a session that keeps being touched and rewritten', async () => {
  const store = new SQLiteStore(tempDb(), { maxLifetime: 0.4 })
  await store.set('s', sessionFor('s', 3_600_000))
  const started = Date.now()
  while (Date.now() - started < 300) {
    assert.equal(await store.touch('s', sessionFor('s', 3_600_000)), 'OK')
    await store.set('s', sessionFor('s', 3_600_000))
    await sleep(30)
  }
  assert.equal((await store.get('s')).user, 's')
  await sleep(450 - (Date.now() - started))
  assert.equal(await store.get('s'), null)
  assert.equal(await store.touch('s', sessionFor('s', 3_600_000)), 'EXPIRED')
  // Set again after it ended: a new session with a new lifetime.
  await store.set('s', sessionFor('again', 3_600_000))
  assert.equal((await store.get('s')).user, 'again')
  store.close()
})

test('the WAL stays bounded under sustained writes', async (t) => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: false })
  const payload = 'x'.repeat(400)
  let largest = 0
  for (let round = 0; round < 100; round++) {
    await Promise.all(Array.from({ length: 500 }, (_, i) => store.set(`s${round}-${i}`, { ...sessionFor(i), payload })))
    largest = Math.max(largest, fs.statSync(`${file}-wal`).size)
  }
  const dataBytes = 100 * 500 * 600
  // Checkpoints start at 1000 pages (4 MiB); the writer restarts the WAL past 2000 (8 MiB).
  // Allow three times that for a loaded machine, against ~30 MB written.
  assert.ok(largest < 24 * 1024 * 1024, `WAL reached ${largest} bytes for ${dataBytes} bytes written`)
  store.close()
  assert.equal(fs.existsSync(`${file}-wal`) ? fs.statSync(`${file}-wal`).size : 0, 0, 'close checkpoints and truncates')
  t.diagnostic(`WAL peak ${largest} bytes over ${dataBytes} bytes of sessions written`)
})
