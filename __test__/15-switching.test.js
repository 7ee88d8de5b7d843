'use strict'

// Switching from another store without logging anyone out: users log in through a real
// Express app on connect-session-knex, connect-session-sequelize or express-sqlite; the
// app then switches to this store on the same file, and the same cookies still work.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const session = require('express-session')
const signature = require('cookie-signature')
const { SQLiteStore } = require('..')
const { createApp } = require('../examples/app')
const { tempDir, inspect, betterSqlite3 } = require('./helpers')

const SECRET = 'switching secret'

async function serve(store) {
  const server = createApp(store, { secret: SECRET, maxAgeMs: 3_600_000 }).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  return {
    async get(url, cookie) {
      const response = await fetch(base + url, { headers: cookie ? { cookie } : {} })
      const set = response.headers.get('set-cookie')
      return { status: response.status, body: await response.text(), cookie: set && set.split(';')[0] }
    },
    stop: () => new Promise((resolve) => server.close(resolve)),
  }
}

/** The cookie express-session would have sent for a session id. */
const cookieFor = (sid) => `connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SECRET)}`)}`

/**
 * Each imported row's expiry against the old table's, converted from the old store's
 * format to epoch ms: every row copied, none with a different expiry.
 */
function sameExpiries(t, file, { table, sid, expires, toMs }) {
  const old = new Map(inspect(file).all(`SELECT ${sid} AS sid, ${expires} AS expires FROM "${table}"`).map((r) => [r.sid, r.expires]))
  const ours = inspect(file).all('SELECT id, expires FROM Sessions ORDER BY id')
  assert.equal(ours.length, 3, 'the three logged-in sessions were imported')
  for (const { id, expires: ms } of ours) {
    assert.ok(old.has(id), `${id} comes from the old table`)
    const converted = toMs(old.get(id))
    assert.ok(Number.isSafeInteger(converted), `${id}: ${old.get(id)} reads as a date`)
    assert.equal(ms, converted, `${id}: old ${JSON.stringify(old.get(id))}`)
  }
  t.diagnostic(`${ours.length} imported expiries equal the old table's, e.g. ${JSON.stringify(old.get(ours[0].id))} -> ${ours[0].expires}`)
}

/** knex: an ISO string (v5 over SQLite) or epoch ms (older versions). */
const knexExpiredToMs = (value) => (typeof value === 'number' ? value : Date.parse(value))

/** sequelize: 'YYYY-MM-DD HH:MM:SS.SSS +00:00', which Date.parse reads once it is ISO 8601. */
const sequelizeExpiresToMs = (value) => {
  const parts = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) ([+-]\d\d:\d\d)$/.exec(value)
  return parts ? Date.parse(`${parts[1]}T${parts[2]}${parts[3]}`) : NaN
}

const expiredSession = () => ({
  cookie: { originalMaxAge: 1000, expires: new Date(Date.now() - 60_000), maxAge: -60_000, httpOnly: true, path: '/' },
  user: { name: 'expired' },
})

/** Logs users in on the old store, then checks them on ours. */
async function switchKeepsEveryone(t, { oldStore, closeOld, newStore, file, beforeSwitch, afterImport }) {
  const oldApp = await serve(oldStore)
  const names = ['ada', 'grace', 'linus']
  const cookies = []
  for (const name of names) cookies.push((await oldApp.get(`/login?name=${name}`)).cookie)
  for (const [i, cookie] of cookies.entries()) {
    assert.equal(JSON.parse((await oldApp.get('/me', cookie)).body).name, names[i], 'logged in on the old store')
  }
  await oldApp.stop()
  if (beforeSwitch) await beforeSwitch()
  await closeOld()

  const store = newStore()
  // Before any request: express-session's touch on each request would move the expiry.
  if (afterImport) afterImport()
  const app = await serve(store)
  for (const [i, cookie] of cookies.entries()) {
    const me = await app.get('/me', cookie)
    assert.equal(me.status, 200, `${names[i]} is still logged in`)
    assert.equal(JSON.parse(me.body).name, names[i])
  }
  assert.equal((await app.get('/me', cookieFor('expired-sid'))).status, 401, 'an expired session stays expired')
  assert.equal(await store.length(), names.length)
  await app.stop()
  await store.close()
  t.diagnostic(`${names.length} live sessions carried over, 1 expired left behind`)
}

test('from connect-session-knex (knex over sqlite3): same cookies still logged in', async (t) => {
  const file = path.join(tempDir(), 'connect-session-knex.sqlite')
  const knex = require('knex')({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true })
  const { ConnectSessionKnexStore } = require('connect-session-knex')
  const oldStore = new ConnectSessionKnexStore({ knex, cleanupInterval: 0 })
  await oldStore.ready
  await new Promise((resolve, reject) => oldStore.set('expired-sid', expiredSession(), (e) => (e ? reject(e) : resolve())))
  await switchKeepsEveryone(t, {
    oldStore,
    file,
    closeOld: () => knex.destroy(),
    newStore: () => new SQLiteStore(file, { importFrom: 'connect-session-knex' }),
    afterImport: () => sameExpiries(t, file, { table: 'sessions_imported', sid: 'sid', expires: 'expired', toMs: knexExpiredToMs }),
  })
  // What was in the old table, and what became of it.
  const formats = inspect(file).all('SELECT typeof(expired) AS expired, typeof(sess) AS sess, expired AS sample FROM sessions_imported LIMIT 1')[0]
  assert.deepEqual([formats.expired, formats.sess], ['text', 'text'])
  assert.match(formats.sample, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.diagnostic(`knex stored expired as ${formats.expired} like ${formats.sample}; the old table is kept as sessions_imported`)
  // Opening again imports nothing twice.
  const again = new SQLiteStore(file, { importFrom: 'connect-session-knex' })
  assert.equal(await again.length(), 3)
  await again.close()
})

test('from connect-session-sequelize (sequelize over sqlite3): same cookies still logged in', async (t) => {
  const file = path.join(tempDir(), 'sessions.sqlite')
  const { Sequelize } = require('sequelize')
  const sequelize = new Sequelize({ dialect: 'sqlite', storage: file, logging: false })
  const SequelizeStore = require('connect-session-sequelize')(session.Store)
  const oldStore = new SequelizeStore({ db: sequelize, checkExpirationInterval: 0 })
  await oldStore.sync()
  await new Promise((resolve, reject) => oldStore.set('expired-sid', expiredSession(), (e) => (e ? reject(e) : resolve())))
  await switchKeepsEveryone(t, {
    oldStore,
    file,
    closeOld: async () => {
      oldStore.stopExpiringSessions()
      await sequelize.close()
    },
    newStore: () => new SQLiteStore(file, { importFrom: 'connect-session-sequelize' }),
    afterImport: () => sameExpiries(t, file, { table: 'Sessions_imported', sid: 'sid', expires: 'expires', toMs: sequelizeExpiresToMs }),
  })
  const formats = inspect(file).all('SELECT typeof(expires) AS expires, expires AS sample, typeof(data) AS data FROM Sessions_imported LIMIT 1')[0]
  assert.equal(formats.expires, 'text')
  assert.match(formats.sample, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+00:00$/)
  t.diagnostic(`sequelize stored expires as ${formats.expires} like ${formats.sample}; the old table is kept as Sessions_imported`)
})

test('from express-sqlite: the same table is migrated in place, same cookies still logged in', async (t) => {
  const { skip } = betterSqlite3()
  if (skip) return t.skip(`express-sqlite needs better-sqlite3: ${skip}`)
  const file = path.join(tempDir(), 'sessions.db')
  const { SQLiteStore: ExpressSqliteStore } = require('express-sqlite')
  const oldStore = new ExpressSqliteStore(file)
  oldStore.set('expired-sid', JSON.parse(JSON.stringify(expiredSession())), () => {})
  await switchKeepsEveryone(t, {
    oldStore,
    file,
    closeOld: () => oldStore.db.close(),
    newStore: () => new SQLiteStore(file),
  })
})
