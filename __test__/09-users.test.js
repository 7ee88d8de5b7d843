'use strict'

// Sessions by user, store events through express-session, stats, serialize and backup.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const express = require('express')
const session = require('express-session')
const { SQLiteStore } = require('..')
const { createApp, createStore } = require('../examples/logout-everywhere')
const { tempDb, tempDir, sessionFor, inspect, sleep, betterSqlite3, holdWriteLock } = require('./helpers')

const noPosixModes = process.platform === 'win32' && 'Windows has no POSIX file modes'

const userSession = (user, maxAge = 600_000) => ({ ...sessionFor('x', maxAge), passport: { user } })

test('idsByUser and destroyByUser: two users, several sessions each, expiry respected', async () => {
  const file = tempDb()
  const store = createStore(file)
  await store.set('a1', userSession('alice'))
  await store.set('a2', userSession('alice'))
  await store.set('a3', userSession('alice', 50))
  await store.set('b1', userSession('bob'))
  await store.set('b2', userSession('bob'))
  await store.set('anon', sessionFor('nobody'))
  assert.deepEqual(await store.idsByUser('alice'), ['a1', 'a2', 'a3'])
  await sleep(80)
  assert.deepEqual(await store.idsByUser('alice'), ['a1', 'a2'], 'expired sessions are not listed')
  assert.equal(await store.destroyByUser('alice', { except: 'a2' }), 1)
  assert.deepEqual(await store.idsByUser('alice'), ['a2'])
  assert.equal(await store.destroyByUser('bob'), 2)
  assert.deepEqual(await store.idsByUser('bob'), [])
  assert.equal((await store.get('anon')).user, 'nobody', 'other sessions untouched')
  assert.equal(await store.get('a2').then((s) => s.passport.user), 'alice')
  // The key column is stored and indexed; a session that loses its user loses its key.
  await store.set('a2', sessionFor('logged out'))
  assert.deepEqual(await store.idsByUser('alice'), [])
  const plan = inspect(file).all("EXPLAIN QUERY PLAN SELECT id FROM Sessions WHERE user_key = 'x' AND expires > 0")
  assert.match(JSON.stringify(plan), /Sessions\.user_key/)
  await assert.rejects(store.idsByUser(undefined), { code: 'ERR_INVALID_USER_KEY' })
  await assert.rejects(store.destroyByUser({}), { code: 'ERR_INVALID_USER_KEY' })
  const numeric = new SQLiteStore(':memory:', { userKey: (s) => s.uid })
  await numeric.set('n', { cookie: {}, uid: 42 })
  assert.deepEqual(await numeric.idsByUser(42), ['n'])
  assert.deepEqual(await numeric.idsByUser('42'), ['n'])
  await numeric.close()
  await store.close()
})

test('an existing table gains the user column: express-sqlite table, then userKey', async (t) => {
  const { skip } = betterSqlite3()
  if (skip) return t.skip(`express-sqlite needs better-sqlite3: ${skip}`)
  const file = tempDb()
  const { SQLiteStore: OldStore } = require('express-sqlite')
  const old = new OldStore(file)
  old.set('old', JSON.parse(JSON.stringify(userSession('carol'))), () => {})
  await old.db.close()
  const store = createStore(file)
  assert.deepEqual(await store.idsByUser('carol'), [], 'old rows have no key until written again')
  await store.set('old', userSession('carol'))
  assert.deepEqual(await store.idsByUser('carol'), ['old'])
  await store.close()
})

test('log out everywhere and log out other devices, end to end over HTTP', async () => {
  const store = createStore(tempDb())
  const server = createApp(store).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  const request = async (method, url, cookie) => {
    const response = await fetch(base + url, { method, headers: cookie ? { cookie } : {} })
    const set = response.headers.get('set-cookie')
    return { status: response.status, body: await response.text(), cookie: set && set.split(';')[0] }
  }
  const login = async (user) => (await request('GET', `/login?user=${user}`)).cookie
  const [laptop, phone, tablet] = [await login('ada'), await login('ada'), await login('ada')]
  const other = await login('grace')
  assert.equal(JSON.parse((await request('GET', '/devices', laptop)).body).length, 3)

  assert.deepEqual(JSON.parse((await request('POST', '/logout-other-devices', laptop)).body), { ended: 2 })
  assert.equal((await request('GET', '/me', laptop)).status, 200)
  assert.equal((await request('GET', '/me', phone)).status, 401)
  assert.equal((await request('GET', '/me', tablet)).status, 401)

  const again = await login('ada')
  assert.deepEqual(JSON.parse((await request('POST', '/logout-everywhere', again)).body), { ended: 2 })
  assert.equal((await request('GET', '/me', laptop)).status, 401)
  assert.equal((await request('GET', '/me', again)).status, 401)
  assert.equal((await request('GET', '/me', other)).status, 200, 'another user is not logged out')
  await new Promise((resolve) => server.close(resolve))
  await store.close()
})

test("events: 'connect' after new, and 'disconnect' makes express-session skip the store", async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: false })
  const events = []
  store.on('connect', () => events.push('connect'))
  store.on('disconnect', () => events.push('disconnect'))
  const app = express()
  app.use(session({ store, secret: 's', resave: false, saveUninitialized: false }))
  app.get('/', (req, res) => res.send(req.session ? 'with session' : 'without session'))
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const url = `http://127.0.0.1:${server.address().port}/`
  assert.deepEqual(events, ['connect'])
  assert.equal(await (await fetch(url)).text(), 'with session')

  // Closing the store emits 'disconnect': express-session stops using it and serves
  // requests without a session instead of failing them.
  await store.close()
  await sleep(10)
  assert.deepEqual(events, ['connect', 'disconnect'])
  assert.equal(await (await fetch(url)).text(), 'without session')
  await new Promise((resolve) => server.close(resolve))
})

test("a corrupt database emits 'disconnect' once, and 'error' only when someone listens", async () => {
  const file = tempDb()
  const writer = new SQLiteStore(file, { pruneInterval: false })
  for (let i = 0; i < 300; i++) await writer.set(`s${i}`, { ...sessionFor(i), pad: 'p'.repeat(400) })
  await writer.close()
  // Garbage over every page of the sessions, behind SQLite's back: all but the first
  // (the schema) and those of the store's table-version record, which opening reads
  // (a corrupt schema or version page fails the constructor with SQLITE_CORRUPT instead).
  const versionPages = new Set(
    inspect(file).all("SELECT rootpage FROM sqlite_master WHERE tbl_name = 'express_sqlite_native_schema'").map((r) => r.rootpage),
  )
  const size = fs.statSync(file).size
  const fd = fs.openSync(file, 'r+')
  for (let page = 2; page <= size / 4096; page++) {
    if (!versionPages.has(page)) fs.writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, (page - 1) * 4096)
  }
  fs.closeSync(fd)

  const store = new SQLiteStore(file, { pruneInterval: false })
  const events = []
  store.on('disconnect', () => events.push('disconnect'))
  const code = (promise) => promise.then(() => 'ok', (error) => error.code)
  assert.equal(await code(store.get('s5')), 'SQLITE_CORRUPT', 'no crash, no unhandled error event')
  const errors = []
  store.on('error', (error) => errors.push(error.code))
  assert.equal(await code(store.get('s7')), 'SQLITE_CORRUPT')
  await sleep(20)
  assert.deepEqual(events, ['disconnect'], 'disconnect once')
  assert.deepEqual(errors, ['SQLITE_CORRUPT'], 'error only once someone listens')
  await store.close()
})

test('stats: live, expired, sizes and counters', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: false, touchAfter: 60 })
  for (let i = 0; i < 20; i++) await store.set(`live${i}`, sessionFor(i))
  for (let i = 0; i < 5; i++) await store.set(`short${i}`, sessionFor(i, 30))
  await store.touch('live0', sessionFor(0))
  await sleep(50)
  let stats = await store.stats()
  assert.equal(stats.sessions, 20)
  assert.equal(stats.expired, 5)
  assert.equal(stats.touchesSkipped, 1)
  assert.ok(stats.fileBytes > 0)
  assert.ok(stats.walBytes > 0, 'a WAL store that was written to has a non-empty WAL')
  assert.equal(stats.pruneRuns, 0)
  assert.equal(await store.prune(), 5)
  stats = await store.stats()
  assert.equal(stats.expired, 0)
  assert.equal(stats.pruneRuns, 1)
  assert.equal(stats.rowsPruned, 5)
  assert.deepEqual(Object.keys(stats).sort(), [
    'busyRetries', 'cachedReads', 'checkpoints', 'expired', 'fileBytes', 'pruneErrors', 'pruneRuns', 'prunesSkipped',
    'rowsPruned', 'sessions', 'touchesSkipped', 'walBytes',
  ])
  assert.equal(stats.busyRetries, 0, 'no other connection held a lock')
  assert.equal(stats.prunesSkipped, 0, 'no other process prunes')
  assert.equal(stats.pruneErrors, 0)
  const cachedBefore = stats.cachedReads
  assert.equal((await store.get('live1')).user, 1)
  assert.equal((await store.get('live1')).user, 1)
  assert.ok((await store.stats()).cachedReads > cachedBefore, 'a session read again comes from the session cache')
  await store.close()
})

test('stats: checkpoints and busyRetries count what happened', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: false })
  await store.set('first', sessionFor('first'))
  assert.equal((await store.stats()).checkpoints, 0)
  // Past 1,000 WAL pages (4 MiB) the writer asks the background thread for a checkpoint.
  const pad = 'p'.repeat(3000)
  for (let round = 0; round < 10; round++) {
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.set(`s${round}-${i}`, { ...sessionFor(i), pad })))
  }
  let stats = await store.stats()
  for (let i = 0; i < 40 && stats.checkpoints === 0; i++) {
    await sleep(50)
    stats = await store.stats()
  }
  assert.ok(stats.checkpoints > 0, `checkpoints after ~6 MB of sessions: ${stats.checkpoints}`)
  // Another process holds the write lock for a while: the write waits for it, and says so.
  assert.equal(stats.busyRetries, 0)
  const holder = await holdWriteLock(file)
  const waiting = store.set('waits', sessionFor('waits'))
  await sleep(150)
  await holder.release()
  await waiting
  assert.ok((await store.stats()).busyRetries > 0, 'the wait for the lock is counted')
  await store.close()
})

test('serialize saves an in-memory store, and backup copies one to a file', async () => {
  const memory = new SQLiteStore(':memory:')
  await memory.set('m', sessionFor('m'))
  const image = memory.serialize()
  // An in-memory store is serialized under its connection's lock and the image written
  // after the lock is released (see src/backup.rs).
  const copyOfPrivate = path.join(tempDir(), 'private-copy.db')
  await memory.backup(copyOfPrivate)
  await memory.close()
  assert.deepEqual(inspect(copyOfPrivate).all('SELECT id FROM Sessions'), [{ id: 'm' }])
  const restored = new SQLiteStore(image)
  assert.equal((await restored.get('m')).user, 'm')
  const copyOfMemory = path.join(tempDir(), 'memory-copy.db')
  await restored.backup(copyOfMemory)
  await restored.close()
  const fromCopy = new SQLiteStore(copyOfMemory)
  assert.equal((await fromCopy.get('m')).user, 'm')
  await fromCopy.close()

  assert.deepEqual(inspect(copyOfMemory).all('PRAGMA integrity_check'), [{ integrity_check: 'ok' }])
  await assert.rejects(new SQLiteStore(':memory:').backup(''), { name: 'TypeError' })
})

test('backup of a WAL file finishes while writes go on, and the copy is one consistent state', async (t) => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: false })
  const pad = 'p'.repeat(400)
  await Promise.all(Array.from({ length: 20_000 }, (_, i) => store.set(`s${i}`, { ...sessionFor(i), pad })))
  const target = path.join(tempDir(), 'backup.db')
  // New rows, one after another, from before the backup starts until it has finished.
  let issued = 0
  let acknowledged = 0
  let writing = true
  const writes = (async () => {
    while (writing) {
      await store.set(`during${issued++}`, sessionFor('during'))
      acknowledged++
    }
  })()
  while (acknowledged < 5) await sleep(1)
  const before = 20_000 + acknowledged
  const acknowledgedAtStart = acknowledged
  await store.backup(target)
  const duringBackup = acknowledged - acknowledgedAtStart
  writing = false
  await writes
  const after = await store.length()
  assert.ok(duringBackup > 0, 'writes were acknowledged while the backup ran')
  await assert.rejects(store.backup(file), { code: 'ERR_INVALID_ARG_VALUE' }, 'never over the live file')
  await store.close()
  assert.deepEqual(inspect(target).all('PRAGMA integrity_check'), [{ integrity_check: 'ok' }])
  const copied = inspect(target).get('SELECT COUNT(*) AS n FROM Sessions').n
  assert.ok(copied >= before && copied <= after, `${before} <= ${copied} <= ${after}`)
  t.diagnostic(`${duringBackup} writes acknowledged during the backup; the copy holds ${copied} rows`)
  await t.test('the copy is private (0600)', { skip: noPosixModes }, () => {
    assert.equal(fs.statSync(target).mode & 0o777, 0o600)
  })
})
