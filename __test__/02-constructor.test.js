'use strict'

// Every way to construct a store, every option's default, and every bad option.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { SQLiteStore, Database } = require('..')
const { tempDir, tempDb, sessionFor, inspect, holdWriteLock, betterSqlite3 } = require('./helpers')

const noPosixModes = process.platform === 'win32' && 'Windows has no POSIX file modes (mode bits there say only read-only or not)'

test('a path: missing directories are created, defaults are Sessions, WAL, 1 day ttl', async (t) => {
  const file = path.join(tempDir(), 'deep', 'er', 'sessions.db')
  const store = new SQLiteStore(file)
  assert.equal(store.tableName, 'Sessions')
  await store.set('s', { cookie: {}, user: 1 })
  const db = inspect(file)
  assert.equal(db.get('PRAGMA journal_mode').journal_mode, 'wal')
  const row = db.get('SELECT expires, created FROM Sessions WHERE id = ?', 's')
  const day = 86_400_000
  // expires is computed when set() is called, created when the write commits (at the end
  // of the event-loop turn, later still on a loaded machine): a day apart, less that wait.
  const wait = row.created + day - row.expires
  assert.ok(wait >= 0 && wait < 1000, `default ttl is 86400 s (expires ${row.expires}, created ${row.created})`)
  await t.test('the new file is 0600', { skip: noPosixModes }, () => {
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
  })
  await db.close()
  await store.close()
})

test('defaults: touches write at once, no lifetime cap, a 1 MiB session limit, the session cache on', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file)
  // touchAfter 0 and disableTouch false: a touch moments after the set moves the expiry.
  await store.set('s', sessionFor('x', 60_000))
  assert.equal(await store.touch('s', sessionFor('x', 120_000)), 'OK')
  assert.equal((await store.stats()).touchesSkipped, 0)
  const db = inspect(file)
  const moved = db.get('SELECT expires - created AS span FROM Sessions WHERE id = ?', 's').span
  assert.ok(moved > 100_000, `the touch moved the expiry (${moved} ms after creation)`)
  // maxLifetime unset: a cookie ten years out keeps its expiry.
  const decade = new Date(Date.now() + 10 * 365 * 86_400_000)
  await store.set('long', { cookie: { expires: decade.toISOString() } })
  assert.equal(db.get('SELECT expires FROM Sessions WHERE id = ?', 'long').expires, decade.getTime())
  await db.close()
  // maxSessionBytes 1 MiB: just under is stored, just over is refused.
  const overhead = JSON.stringify({ cookie: {}, pad: '' }).length
  await store.set('big', { cookie: {}, pad: 'x'.repeat(1024 * 1024 - overhead) })
  await assert.rejects(store.set('bigger', { cookie: {}, pad: 'x'.repeat(1024 * 1024 - overhead + 1) }), {
    code: 'ERR_SESSION_TOO_LARGE',
  })
  // cacheSize 8 MiB: a session just written is read from memory.
  await store.get('s')
  assert.ok((await store.stats()).cachedReads >= 1, 'the session cache answered')
  await store.close()
})

test('wal: false leaves a new file in rollback-journal mode', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { wal: false })
  await store.set('s', sessionFor(1))
  await store.close()
  const db = inspect(file)
  assert.equal(db.get('PRAGMA journal_mode').journal_mode, 'delete')
  await db.close()
})

test('fileMustExist: a missing file is an Error with SQLITE_CANTOPEN and nothing is created', () => {
  const dir = path.join(tempDir(), 'not-there')
  assert.throws(() => new SQLiteStore(path.join(dir, 'x.db'), { databaseOptions: { fileMustExist: true } }), {
    code: 'SQLITE_CANTOPEN',
    message: /does not exist/,
  })
  assert.equal(fs.existsSync(dir), false)
})

test('":memory:" is a private in-memory database', async () => {
  const a = new SQLiteStore(':memory:')
  const b = new SQLiteStore(':memory:')
  await a.set('s', sessionFor('a'))
  assert.equal((await a.get('s')).user, 'a')
  assert.equal(await b.get('s'), null)
  assert.equal(a.database.memory, true)
  await a.close()
  await b.close()
})

test('a Buffer is opened in memory; serialize() gives one back', async () => {
  const source = new SQLiteStore(':memory:')
  await source.set('kept', sessionFor('kept'))
  const image = source.database.serialize()
  assert.ok(Buffer.isBuffer(image))
  await source.close()
  const copy = new SQLiteStore(image)
  assert.equal((await copy.get('kept')).user, 'kept')
  await copy.set('more', sessionFor('more'))
  assert.equal(await copy.length(), 2)
  await copy.close()
  assert.throws(() => new SQLiteStore(Buffer.from('definitely not a database, just some bytes'.repeat(30))), {
    code: 'SQLITE_NOTADB',
  })
})

test('a file that is not SQLite is an Error with SQLITE_NOTADB', () => {
  const file = tempDb()
  fs.writeFileSync(file, Buffer.alloc(8192, 'x'))
  assert.throws(() => new SQLiteStore(file), { code: 'SQLITE_NOTADB' })
})

test('a shared Database: two stores, two tables, one file; stores do not close it', async () => {
  const file = tempDb()
  const db = new Database(file)
  const users = new SQLiteStore(db, { tableName: 'user_sessions' })
  const admins = new SQLiteStore(db, { tableName: 'admin_sessions' })
  await users.set('s', sessionFor('user'))
  await admins.set('s', sessionFor('admin'))
  assert.equal((await users.get('s')).user, 'user')
  assert.equal((await admins.get('s')).user, 'admin')
  await users.close()
  assert.equal(db.open, true, 'closing a store leaves a Database it did not open')
  assert.equal((await admins.get('s')).user, 'admin')
  await admins.close()
  await db.close()
  assert.equal(db.open, false)
  const check = inspect(file)
  // Sessions tables only, not the store's own bookkeeping (table versions, prune leases).
  const tables = check
    .all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'express_sqlite_native_%' ORDER BY name")
    .map((r) => r.name)
  assert.deepEqual(tables, ['admin_sessions', 'user_sessions'])
  await check.close()
})

test('a better-sqlite3 Database: the same file is used, its journal mode and readonly honoured', async (t) => {
  const { module: BetterSqlite3, skip } = betterSqlite3()
  if (skip) return t.skip(skip)
  const file = tempDb()
  const handle = new BetterSqlite3(file)
  const store = new SQLiteStore(handle)
  await store.set('s', sessionFor('shared'))
  const row = handle.prepare('SELECT data FROM Sessions WHERE id = ?').get('s')
  assert.equal(JSON.parse(row.data).user, 'shared')
  assert.equal(handle.pragma('journal_mode', { simple: true }), 'delete', 'journal mode left as the app set it')
  await store.close()
  assert.equal(handle.open, true, 'the store never closes a handle it did not open')
  await handle.close()

  const readonlyHandle = new BetterSqlite3(file, { readonly: true })
  const readonlyStore = new SQLiteStore(readonlyHandle)
  assert.equal((await readonlyStore.get('s')).user, 'shared')
  await assert.rejects(readonlyStore.set('t', sessionFor('t')), { code: 'SQLITE_READONLY' })
  await readonlyStore.close()
  await readonlyHandle.close()

  const memory = new BetterSqlite3(':memory:')
  assert.throws(() => new SQLiteStore(memory), { name: 'TypeError', message: /in-memory better-sqlite3/ })
  await memory.close()
})

test('readonly: reads work, writes fail with SQLITE_READONLY, nothing crashes', async () => {
  const file = tempDb()
  const writer = new SQLiteStore(file)
  await writer.set('s', sessionFor('r'))
  await writer.close()
  const store = new SQLiteStore(file, { databaseOptions: { readonly: true } })
  assert.equal((await store.get('s')).user, 'r')
  assert.equal(await store.length(), 1)
  for (const write of [
    () => store.set('n', sessionFor('n')),
    () => store.destroy('s'),
    () => store.touch('s', sessionFor('r')),
    () => store.clear(),
  ]) {
    await assert.rejects(write(), (error) => error instanceof Error && error.code === 'SQLITE_READONLY')
  }
  assert.equal((await store.get('s')).user, 'r')
  await store.close()
})

test('table names with quotes, spaces and SQL are quoted, never injected', async () => {
  const file = tempDb()
  const victim = new SQLiteStore(file, { tableName: 'victim' })
  await victim.set('keep', sessionFor('keep'))
  for (const tableName of ['x"; DROP TABLE victim; --', "it's", 'with space', 'select', '"']) {
    const store = new SQLiteStore(file, { tableName })
    await store.set('s', sessionFor(tableName))
    assert.equal((await store.get('s')).user, tableName)
    assert.equal(await store.length(), 1)
    store.close()
  }
  assert.equal((await victim.get('keep')).user, 'keep')
  await victim.close()
})

test('unknown options and wrong types are TypeErrors naming them', () => {
  const file = tempDb()
  const cases = [
    [{ tablename: 'x' }, /unknown option "tablename"/],
    [{ tableName: '' }, /tableName/],
    [{ tableName: 5 }, /tableName/],
    [{ tableName: 'sess\0ions' }, /tableName must be a non-empty string without NUL/],
    [{ wal: 'yes' }, /wal/],
    [{ ttl: -1 }, /ttl/],
    [{ ttl: 'long' }, /ttl/],
    [{ databaseOptions: { timeout: -5 } }, /timeout/],
    [{ databaseOptions: { verbose: console.log } }, /unknown option "verbose"/],
    [{ databaseOptions: 'ro' }, /databaseOptions/],
    [{ touchAfter: -1 }, /touchAfter/],
    [{ userKey: 'id' }, /userKey/],
    [[], /storeOptions must be an object/],
    [null, /storeOptions must be an object/],
  ]
  for (const [options, message] of cases) {
    assert.throws(() => new SQLiteStore(file, options), { name: 'TypeError', message }, JSON.stringify(options))
  }
  for (const database of [undefined, null, 42, '', {}, [], () => {}]) {
    assert.throws(() => new SQLiteStore(database), { name: 'TypeError' }, String(database))
  }
})

test('the store emits connect after the constructor returns, and disconnect on close', async () => {
  const store = new SQLiteStore(tempDb())
  const events = []
  store.on('connect', () => events.push('connect'))
  store.on('disconnect', () => events.push('disconnect'))
  await new Promise((resolve) => setImmediate(resolve))
  await store.close()
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(events, ['connect', 'disconnect'])
})

test('busy timeout: a lock held past it gives SQLITE_BUSY, within it the write waits and succeeds', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { databaseOptions: { timeout: 100 } })
  await store.set('a', sessionFor('a'))
  assert.equal((await store.stats()).busyRetries, 0)
  const locker = await holdWriteLock(file)
  assert.equal((await store.stats()).busyRetries, 0, 'stats reads without waiting for the write lock')
  const started = Date.now()
  await assert.rejects(store.set('b', sessionFor('b')), { code: 'SQLITE_BUSY' })
  assert.ok(Date.now() - started >= 90, 'waited for the timeout first')
  assert.equal((await store.get('a')).user, 'a', 'reads keep working under a write lock')
  await locker.release()
  // The JS thread's own attempt fails at once (it never sleeps) and hands the write to
  // the writer thread; that thread's waits for the lock are what busyRetries counts.
  // Read with the lock released, so that only the failed write can have counted.
  assert.ok((await store.stats()).busyRetries > 0, 'the waits for the lock are counted')
  const again = await holdWriteLock(file)
  const waiting = store.set('c', sessionFor('c'))
  setTimeout(() => again.release(), 30)
  await waiting
  assert.equal((await store.get('c')).user, 'c', 'the store keeps working once the lock is gone')
  await store.close()
})

test('each table records its layout version; a table of a newer version is refused, the file left alone', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { pruneInterval: false })
  await store.set('s', sessionFor('kept'))
  await store.close()
  const versions = inspect(file).all('SELECT name, version FROM express_sqlite_native_schema')
  assert.equal(versions.length, 1)
  assert.equal(versions[0].name, 'Sessions')
  const current = versions[0].version
  assert.ok(Number.isInteger(current) && current >= 2)
  // What a later release of the store would leave behind.
  inspect(file).run('UPDATE express_sqlite_native_schema SET version = ?', current + 1)
  for (const options of [{}, { createTable: false }]) {
    assert.throws(() => new SQLiteStore(file, { pruneInterval: false, ...options }), (error) => {
      assert.equal(error.code, 'ERR_SCHEMA_TOO_NEW')
      assert.match(error.message, /newer version of express-sqlite-native/)
      return true
    })
  }
  assert.equal(inspect(file).get('SELECT version FROM express_sqlite_native_schema').version, current + 1)
  assert.equal(JSON.parse(inspect(file).get("SELECT data FROM Sessions WHERE id = 's'").data).user, 'kept')
  // Another table in the same file is not concerned.
  const other = new SQLiteStore(file, { tableName: 'Other', pruneInterval: false })
  await other.set('o', sessionFor('o'))
  await other.close()
})
