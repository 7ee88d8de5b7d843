'use strict'

// express-session end to end over real HTTP, on a real file.

const test = require('node:test')
const assert = require('node:assert/strict')
const { SQLiteStore } = require('..')
const { createApp } = require('../examples/app')
const { tempDb, sleep } = require('./helpers')

async function start(store, options) {
  const server = createApp(store, options).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  return {
    /** GET with an optional cookie; returns status, body and the session cookie set. */
    async get(path, cookie) {
      const response = await fetch(base + path, { headers: cookie ? { cookie } : {} })
      const setCookie = response.headers.get('set-cookie')
      return { status: response.status, body: await response.text(), cookie: setCookie && setCookie.split(';')[0] }
    },
    stop: () => new Promise((resolve) => server.close(resolve)),
  }
}

test('login sets a cookie, the next request sees the session, logout destroys it', async () => {
  const store = new SQLiteStore(tempDb())
  const app = await start(store)
  assert.equal((await app.get('/me')).status, 401)
  const login = await app.get('/login?name=ada')
  assert.equal(login.status, 200)
  assert.match(login.cookie, /^connect\.sid=/)
  const me = await app.get('/me', login.cookie)
  assert.equal(me.status, 200)
  assert.deepEqual(JSON.parse(me.body), { name: 'ada' })
  assert.equal(await store.length(), 1)
  // Writes on every request are kept.
  await app.get('/', login.cookie)
  assert.match((await app.get('/', login.cookie)).body, /visit 2/)
  assert.equal((await app.get('/logout', login.cookie)).status, 200)
  assert.equal((await app.get('/me', login.cookie)).status, 401)
  assert.equal(await store.length(), 0)
  await app.stop()
  await store.close()
})

test('a session survives a restart of the app on the same file', async () => {
  const file = tempDb()
  let store = new SQLiteStore(file)
  let app = await start(store)
  const { cookie } = await app.get('/login?name=grace')
  await app.stop()
  await store.close()

  store = new SQLiteStore(file)
  app = await start(store)
  const me = await app.get('/me', cookie)
  assert.equal(me.status, 200)
  assert.deepEqual(JSON.parse(me.body), { name: 'grace' })
  await app.stop()
  await store.close()
})

test('an expired session no longer logs in, though the browser still sends its cookie', async () => {
  const store = new SQLiteStore(tempDb())
  const app = await start(store, { maxAgeMs: 300 })
  const { cookie } = await app.get('/login?name=brief')
  assert.equal((await app.get('/me', cookie)).status, 200)
  await sleep(400)
  assert.equal((await app.get('/me', cookie)).status, 401)
  assert.equal(await store.length(), 0)
  await app.stop()
  await store.close()
})

test('many users at once: each sees only their own session', async () => {
  const store = new SQLiteStore(tempDb())
  const app = await start(store)
  const users = Array.from({ length: 40 }, (_, i) => `user${i}`)
  const cookies = await Promise.all(users.map(async (name) => (await app.get(`/login?name=${name}`)).cookie))
  const seen = await Promise.all(cookies.map(async (cookie) => JSON.parse((await app.get('/me', cookie)).body).name))
  assert.deepEqual(seen, users)
  assert.equal(await store.length(), 40)
  await app.stop()
  await store.close()
})
