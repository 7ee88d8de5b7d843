'use strict'

// The option names users of connect-session-knex and connect-session-sequelize reach
// for: accepted as aliases of ours, refused together with ours, and doing what they say.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { SQLiteStore } = require('..')
const { tempDb, tempDir, sessionFor, inspect, sleep } = require('./helpers')

test('createTable: false (and createtable): a missing table is an Error naming it, nothing written', async () => {
  for (const option of ['createTable', 'createtable']) {
    const dir = tempDir()
    const file = path.join(dir, 'sessions.db')
    assert.throws(() => new SQLiteStore(file, { [option]: false, tableName: 'my_sessions' }), {
      code: 'ERR_NO_TABLE',
      message: /"my_sessions"/,
    })
    assert.deepEqual(fs.readdirSync(dir), [], 'no file created')
    // An existing file without the table: still nothing written, not even WAL mode.
    new SQLiteStore(file, { tableName: 'other', wal: false }).close()
    const before = fs.readFileSync(file)
    assert.throws(() => new SQLiteStore(file, { [option]: false, tableName: 'my_sessions' }), { code: 'ERR_NO_TABLE' })
    assert.deepEqual(fs.readFileSync(file), before, 'the file is byte for byte the same')
    assert.deepEqual(fs.readdirSync(dir), ['sessions.db'])
  }
})

test('createTable: false with the table present works; sync() creates a missing table', async () => {
  const file = tempDb()
  new SQLiteStore(file).close()
  const store = new SQLiteStore(file, { createTable: false })
  await store.set('s', sessionFor('s'))
  assert.equal((await store.get('s')).user, 's')
  await store.close()
  const memory = new SQLiteStore(':memory:', { tableName: 'x', createTable: true })
  const db = memory.database
  assert.throws(() => new SQLiteStore(db, { tableName: 'later', createTable: false }), { code: 'ERR_NO_TABLE' })
  await memory.close()
})

test('aliases: clearInterval and cleanupInterval (knex), checkExpirationInterval (ms) for pruneInterval, expiration (ms) for ttl', async () => {
  // connect-session-knex called it clearInterval before v5 and cleanupInterval since.
  for (const name of ['clearInterval', 'cleanupInterval']) {
    const file = tempDb()
    const knexStyle = new SQLiteStore(file, { [name]: 150 })
    await knexStyle.set('old', sessionFor('old', 10))
    await sleep(20)
    let rows = 1
    for (let waited = 0; waited < 2000 && rows > 0; waited += 50) {
      await sleep(50)
      rows = inspect(file).get('SELECT COUNT(*) AS n FROM Sessions').n
    }
    assert.equal(rows, 0, `pruned on the ${name} schedule`)
    knexStyle.close()
  }

  const file = tempDb()
  const sequelizeStyle = new SQLiteStore(file, { checkExpirationInterval: 60_000, expiration: 7_200_000 })
  const before = Date.now()
  await sequelizeStyle.set('s', { cookie: {} })
  const expires = inspect(file).get('SELECT expires FROM Sessions WHERE id = ?', 's').expires
  assert.ok(expires >= before + 7_200_000 && expires <= Date.now() + 7_200_000, 'expiration is the default lifetime in ms')
  await sequelizeStyle.close()

  for (const [options, message] of [
    [{ clearInterval: 1000, pruneInterval: 1 }, /pruneInterval or its alias clearInterval/],
    [{ cleanupInterval: 1000, pruneInterval: 1 }, /pruneInterval or its alias cleanupInterval/],
    [{ checkExpirationInterval: 1000, pruneInterval: 1 }, /pruneInterval or its alias checkExpirationInterval/],
    [{ expiration: 1000, ttl: 1 }, /ttl or its alias expiration/],
    [{ createtable: true, createTable: true }, /createTable or its alias createtable/],
    [{ clearInterval: 1000, checkExpirationInterval: 1000 }, /not both/],
    [{ clearInterval: 1000, cleanupInterval: 1000 }, /clearInterval or cleanupInterval, not both/],
    [{ cleanupInterval: 1000, checkExpirationInterval: 1000 }, /not both/],
    [{ clearInterval: 'soon' }, /clearInterval/],
    [{ cleanupInterval: NaN }, /cleanupInterval/],
    [{ checkExpirationInterval: -Infinity }, /checkExpirationInterval/],
    // Knex before v5 read 0 as "the default interval": refused rather than guessed at.
    [{ clearInterval: 0 }, /clearInterval must be false or a positive number of milliseconds/],
  ]) {
    assert.throws(() => new SQLiteStore(':memory:', options), { name: 'TypeError', message })
  }
})

test('cleanupInterval or checkExpirationInterval of 0 turns background pruning off, as in their stores', async () => {
  for (const name of ['cleanupInterval', 'checkExpirationInterval']) {
    const file = tempDb()
    const store = new SQLiteStore(file, { [name]: 0 })
    await store.set('old', sessionFor('old', 10))
    await sleep(150)
    assert.equal(inspect(file).get('SELECT COUNT(*) AS n FROM Sessions').n, 1, `${name}: 0 is not "prune all the time"`)
    assert.equal(await store.prune(), 1, 'a prune on request still works')
    store.close()
  }
})

test('sync() returns a Promise and creates the table when it has gone; then set and get work', async () => {
  for (const createTable of [true, false]) {
    const file = tempDb()
    new SQLiteStore(file).close()
    const store = new SQLiteStore(file, { createTable })
    await store.set('before', sessionFor('before'))
    // Dropped behind the store's back, through another connection (another process).
    inspect(file).run('DROP TABLE Sessions')
    await assert.rejects(store.get('before'), { code: 'SQLITE_ERROR', message: /no such table/ })
    const result = store.sync()
    assert.ok(result instanceof Promise)
    assert.equal(await result, undefined)
    const tables = inspect(file).all("SELECT name FROM sqlite_master WHERE type = 'table'").map((r) => r.name)
    assert.ok(tables.includes('Sessions'), `createTable: ${createTable}: the table is back`)
    await store.set('after', sessionFor('after'))
    assert.equal((await store.get('after')).user, 'after')
    assert.equal(await store.get('before'), null)
    assert.equal(await store.sync(), undefined, 'a table that is there is left as it is')
    assert.deepEqual(await store.ids(), ['after'])
    store.close()
    await assert.rejects(store.sync(), { code: 'ERR_STORE_CLOSED' })
  }
  // A read-only database cannot have its table created again.
  const file = tempDb()
  new SQLiteStore(file).close()
  const readonly = new SQLiteStore(file, { databaseOptions: { readonly: true } })
  inspect(file).run('DROP TABLE Sessions')
  await assert.rejects(readonly.sync(), { code: 'ERR_NO_TABLE' })
  await readonly.close()
})

test('after sync(), stopDbCleanup still stops all background pruning', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { cleanupInterval: 100 })
  await store.sync()
  await store.sync()
  store.stopDbCleanup()
  await store.set('old', sessionFor('old', 10))
  await sleep(400)
  assert.equal(inspect(file).get('SELECT COUNT(*) AS n FROM Sessions').n, 1, 'not pruned')
  await store.close()
})

test('stopDbCleanup stops the background pruning', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { clearInterval: 100 })
  store.stopDbCleanup()
  await store.set('old', sessionFor('old', 10))
  await sleep(400)
  assert.equal(inspect(file).get('SELECT COUNT(*) AS n FROM Sessions').n, 1, 'not pruned')
  assert.equal(await store.prune(), 1, 'a prune on request still works')
  await store.close()
})

test('extraColumns + extendDefaultFields: columns of your own filled on every set, old tables migrated', async () => {
  const file = tempDb()
  new SQLiteStore(file).close() // an existing table without the columns
  const store = new SQLiteStore(file, {
    extraColumns: { user_id: 'INTEGER', ip: 'TEXT', admin: 'INTEGER', seen: 'INTEGER' },
    extendDefaultFields: (defaults, session) => ({
      data: defaults.data,
      expires: defaults.expires,
      user_id: session.userId,
      ip: session.ip ?? null,
      admin: Boolean(session.admin),
      seen: new Date(1_700_000_000_000),
    }),
    userKey: (session) => session.userId,
  })
  await store.set('a', { ...sessionFor('a'), userId: 7, ip: '10.0.0.1', admin: true })
  await store.set('b', { ...sessionFor('b') })
  const rows = inspect(file).all('SELECT id, user_id, ip, admin, seen, user_key, typeof(user_id) AS t FROM Sessions ORDER BY id')
  assert.deepEqual(rows, [
    { id: 'a', user_id: 7, ip: '10.0.0.1', admin: 1, seen: 1_700_000_000_000, user_key: '7', t: 'integer' },
    { id: 'b', user_id: null, ip: null, admin: 0, seen: 1_700_000_000_000, user_key: null, t: 'null' },
  ])
  assert.deepEqual(await store.idsByUser(7), ['a'])
  await store.close()

  const bad = new SQLiteStore(':memory:', { extraColumns: { x: 'TEXT' }, extendDefaultFields: () => ({ y: 1 }) })
  await assert.rejects(bad.set('s', sessionFor('s')), { code: 'ERR_INVALID_EXTRA_FIELD' })
  const badValue = new SQLiteStore(':memory:', { extraColumns: { x: 'TEXT' }, extendDefaultFields: () => ({ x: {} }) })
  await assert.rejects(badValue.set('s', sessionFor('s')), { code: 'ERR_INVALID_EXTRA_FIELD' })
  await bad.close()
  await badValue.close()
  for (const extraColumns of [{ id: 'TEXT' }, { x: 'VARCHAR' }, { '': 'TEXT' }]) {
    assert.throws(() => new SQLiteStore(':memory:', { extraColumns }), (e) => e instanceof Error && /column|extraColumns/.test(e.message))
  }
  assert.throws(() => new SQLiteStore(':memory:', { extendDefaultFields: () => ({}) }), { name: 'TypeError' })
})
