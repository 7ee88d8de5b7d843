'use strict'

// TTL rules, expiry at millisecond precision, touch semantics, rows express-session
// could not use, and tables written by express-sqlite.

const test = require('node:test')
const assert = require('node:assert/strict')
const { SQLiteStore } = require('..')
const { tempDb, sessionFor, inspect, sleep, betterSqlite3 } = require('./helpers')

function expiresOf(file, sid, table = 'Sessions') {
  const db = inspect(file)
  const row = db.get(`SELECT expires FROM "${table}" WHERE id = ?`, sid)
  db.close()
  return row && row.expires
}

test('TTL comes from cookie.expires (Date or ISO string), else cookie.maxAge, else ttl', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { ttl: 120 })
  const at = new Date(Date.now() + 3_600_000)
  await store.set('date', { cookie: { expires: at, maxAge: 5 } })
  await store.set('iso', { cookie: { expires: at.toISOString() } })
  let before = Date.now()
  await store.set('maxAge', { cookie: { maxAge: 90_000 } })
  assert.equal(expiresOf(file, 'date'), at.getTime())
  assert.equal(expiresOf(file, 'iso'), at.getTime())
  const maxAge = expiresOf(file, 'maxAge')
  assert.ok(maxAge >= before + 90_000 && maxAge <= Date.now() + 90_000)
  before = Date.now()
  await store.set('ttl', { cookie: { expires: null, originalMaxAge: null } })
  const ttl = expiresOf(file, 'ttl')
  assert.ok(ttl >= before + 120_000 && ttl <= Date.now() + 120_000)
  await store.close()

  const byFunction = new SQLiteStore(file, { ttl: (session) => (session.remember ? 1000 : 10) })
  before = Date.now()
  await byFunction.set('fn', { cookie: {}, remember: true })
  const fn = expiresOf(file, 'fn')
  assert.ok(fn >= before + 1_000_000 && fn <= Date.now() + 1_000_000)
  await byFunction.close()
})

test('expired sessions are invisible to get, all, ids and length, to the millisecond', async () => {
  const store = new SQLiteStore(tempDb())
  await store.set('long', sessionFor('long'))
  await store.set('short', { cookie: { expires: new Date(Date.now() + 80) }, user: 'short' })
  assert.equal((await store.get('short')).user, 'short')
  assert.equal(await store.length(), 2)
  await sleep(100)
  assert.equal(await store.get('short'), null)
  assert.equal(await store.length(), 1)
  assert.deepEqual(await store.ids(), ['long'])
  assert.deepEqual(
    (await store.all()).map((s) => s.id),
    ['long'],
  )
  assert.equal(await store.touch('short', sessionFor('short')), 'EXPIRED', 'touch never revives')
  assert.equal(await store.get('short'), null)
  await store.close()
})

test('set of an already-expired session deletes it', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file)
  await store.set('gone', sessionFor('gone'))
  await store.set('gone', { cookie: { expires: new Date(Date.now() - 1000) }, user: 'gone' })
  assert.equal(expiresOf(file, 'gone'), undefined, 'the row is deleted, not stored as expired')
  await store.set('never', { cookie: { maxAge: -5 } })
  assert.equal(expiresOf(file, 'never'), undefined)
  await store.close()
})

test('touch moves only the expiry: it never writes data', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file)
  await store.set('s', { ...sessionFor('original', 1000), counter: 1 })
  const before = expiresOf(file, 's')
  const changed = { ...sessionFor('changed', 600_000), counter: 99 }
  assert.equal(await store.touch('s', changed), 'OK')
  const session = await store.get('s')
  assert.equal(session.user, 'original')
  assert.equal(session.counter, 1)
  assert.ok(expiresOf(file, 's') > before + 500_000)
  await store.close()
})

test('rows that are not JSON objects are treated as missing and deleted; a row without cookie is served as stored', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file)
  await store.set('fine', sessionFor('fine'))
  const db = inspect(file)
  const future = Date.now() + 60_000
  const insert = "INSERT INTO Sessions (id, data, expires, created, touched) VALUES (?, ?, ?, 0, 0)"
  db.run(insert, 'not-json', '{"cookie":', future)
  db.run(insert, 'no-cookie', '{"user":"x"}', future)
  db.run(insert, 'array', '[1,2]', future)
  db.run(insert, 'null', 'null', future)
  await db.close()
  for (const sid of ['not-json', 'array', 'null']) {
    assert.equal(await store.get(sid), null, sid)
  }
  // What set() accepts (any JSON object), get() returns: no cookie is not no session.
  assert.deepEqual(await store.get('no-cookie'), { user: 'x' })
  assert.deepEqual(
    (await store.all()).map((s) => s.id),
    ['fine', 'no-cookie'],
  )
  const check = inspect(file)
  assert.deepEqual(
    check.all('SELECT id FROM Sessions ORDER BY id').map((r) => r.id),
    ['fine', 'no-cookie'],
  )
  await check.close()
  await store.close()
})

test('a table written by express-sqlite keeps working: live sessions served, expired invisible', async (t) => {
  const { skip } = betterSqlite3()
  if (skip) return t.skip(`express-sqlite needs better-sqlite3: ${skip}`)
  const file = tempDb()
  const { SQLiteStore: OldStore } = require('express-sqlite')
  const old = new OldStore(file)
  const live = sessionFor('live', 3_600_000)
  old.set('live', JSON.parse(JSON.stringify(live)), () => {})
  old.set('expired', JSON.parse(JSON.stringify(sessionFor('expired', -60_000))), () => {})
  old.set('browser-session', { cookie: { expires: null, originalMaxAge: null }, user: 'b' }, () => {})
  await old.db.close()

  const store = new SQLiteStore(file, { ttl: 600 })
  assert.equal((await store.get('live')).user, 'live')
  assert.equal(await store.get('expired'), null)
  assert.equal((await store.get('browser-session')).user, 'b')
  assert.equal(expiresOf(file, 'live'), new Date(live.cookie.expires).getTime())
  assert.deepEqual(await store.ids(), ['browser-session', 'live'])
  await store.set('new', sessionFor('new'))
  assert.equal(await store.length(), 3)
  await store.close()
  // Opening again (a second process or a restart) is a no-op migration.
  const again = new SQLiteStore(file)
  assert.equal(await again.length(), 3)
  await again.close()
})
