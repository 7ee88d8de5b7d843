'use strict'

// Hostile options, sessions and names: a polluted Object.prototype, Proxies, throwing
// getters and user functions, sessions that are not JSON objects, names that collide.
// Each failure is a coded error through the callback, never a throw, never a message
// that repeats what a session's own code threw.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { SQLiteStore } = require('..')
const { tempDb, sessionFor, callback, sleep, inspect, runScript } = require('./helpers')

const MARKER = 'MARKER-5e1f'
const boom = () => {
  throw new Error(`${MARKER} thrown by the session's own code`)
}

/** A revoked Proxy: every operation on it throws, even Array.isArray. */
function revoked() {
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  return proxy
}

/** Asserts an error is a coded TypeError that repeats nothing thrown by user code. */
function assertCleanError(error, code, what) {
  assert.ok(error instanceof TypeError, `${what}: a TypeError, got ${error}`)
  assert.equal(error.code, code, `${what}: code`)
  assert.ok(!String(error.message).includes(MARKER), `${what}: the message repeats what was thrown: ${error.message}`)
  assert.equal(error.cause, undefined, `${what}: no cause`)
}

const tables = (file) =>
  inspect(file)
    .all("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .map((r) => r.name)

// --- 5. Options are read once, own properties only ----------------------------------

test('a polluted Object.prototype changes no option: table, lifetime, pruning, readonly, createTable, size limit', () => {
  // In a child process: pollution is process-wide.
  const result = runScript(`
    const path = require('node:path')
    const { SQLiteStore } = require('.')
    const { tempDb } = require('./__test__/helpers')
    const cases = [
      ['tableName', 'attacker'],
      ['maxLifetime', 0.001],
      ['pruneInterval', 0],
      ['readonly', true],
      ['createTable', false],
      ['maxSessionBytes', 1],
    ]
    ;(async () => {
      const results = []
      for (const [name, value] of cases) {
        const file = tempDb()
        Object.prototype[name] = value
        const outcome = { name, file }
        try {
          const store = new SQLiteStore(file)
          outcome.tableName = store.tableName
          await store.set('s', { cookie: { maxAge: 60_000 }, user: name })
          await new Promise((resolve) => setTimeout(resolve, 100))
          outcome.session = await store.get('s')
          outcome.pruneRuns = (await store.stats()).pruneRuns
          store.close()
        } catch (error) {
          outcome.error = String(error.code || error.message)
        } finally {
          delete Object.prototype[name]
        }
        results.push(outcome)
      }
      console.log(JSON.stringify(results))
    })()
  `)
  assert.equal(result.code, 0, result.stderr)
  for (const outcome of JSON.parse(result.stdout)) {
    const what = `Object.prototype.${outcome.name}`
    assert.equal(outcome.error, undefined, `${what}: the store works as without it`)
    assert.equal(outcome.tableName, 'Sessions', `${what}: table`)
    assert.deepEqual(outcome.session, { cookie: { maxAge: 60_000 }, user: outcome.name }, `${what}: the session lives`)
    assert.equal(outcome.pruneRuns, 0, `${what}: no prune in 100 ms (the default interval is 900 s)`)
    assert.deepEqual(tables(outcome.file), ['Sessions'], `${what}: no other table`)
  }
})

test('a Proxy options object is read once per key: valid at first, hostile after, the valid values are used', async () => {
  const gets = {}
  const counting = (target, hostile) =>
    new Proxy(target, {
      get(object, key, receiver) {
        gets[key] = (gets[key] ?? 0) + 1
        return gets[key] === 1 || !(key in hostile) ? Reflect.get(object, key, receiver) : hostile[key]
      },
    })
  const databaseOptions = counting({ timeout: 1000 }, { timeout: 0 })
  const options = counting(
    { tableName: 'good_sessions', maxLifetime: 3600, pruneInterval: 60, databaseOptions },
    { tableName: 'attacker', maxLifetime: 0.001, pruneInterval: 0, databaseOptions: { readonly: true } },
  )
  const file = tempDb()
  const store = new SQLiteStore(file, options)
  assert.deepEqual(gets, { tableName: 1, maxLifetime: 1, pruneInterval: 1, databaseOptions: 1, timeout: 1 }, 'each key read once')
  assert.equal(store.tableName, 'good_sessions')
  await store.set('s', sessionFor('s'))
  await sleep(100)
  assert.equal((await store.get('s')).user, 's', 'maxLifetime is 3600 s, not 1 ms; the database is not read-only')
  assert.equal((await store.stats()).pruneRuns, 0, 'pruneInterval is 60 s, not 0')
  store.close()
  assert.deepEqual(tables(file), ['good_sessions'])
})

test('own keys named like Object.prototype methods are unknown options, TypeErrors naming them', () => {
  const names = ['hasOwnProperty', 'constructor', 'toString', 'valueOf', 'isPrototypeOf', '__proto__']
  for (const name of names) {
    // JSON.parse makes "__proto__" an own key, as a config file read from disk would.
    const own = JSON.parse(JSON.stringify({ [name]: 1 }))
    for (const [options, where] of [
      [own, 'storeOptions'],
      [{ databaseOptions: own }, 'databaseOptions'],
      [{ importFrom: { store: 'connect-session-knex', ...own } }, 'importFrom'],
    ]) {
      assert.throws(
        () => new SQLiteStore(':memory:', options),
        (error) =>
          error instanceof TypeError &&
          error.code === 'ERR_INVALID_ARG_TYPE' &&
          new RegExp(`unknown(?: option)? "${name}"`).test(error.message),
        `${where}: own key "${name}"`,
      )
    }
  }
})

test('an options Proxy or getter that throws gives a coded TypeError from the constructor, not what it threw', () => {
  const throwing = (trap) => new Proxy({ tableName: 'x' }, { [trap]: boom })
  const getter = Object.defineProperty({}, 'tableName', { enumerable: true, get: boom })
  const cases = [
    ['ownKeys trap', throwing('ownKeys')],
    ['get trap', throwing('get')],
    ['getOwnPropertyDescriptor trap', throwing('getOwnPropertyDescriptor')],
    ['getPrototypeOf trap', throwing('getPrototypeOf')],
    ['revoked Proxy', revoked()],
    ['throwing getter', getter],
    ['databaseOptions Proxy', { databaseOptions: throwing('ownKeys') }],
    ['revoked databaseOptions', { databaseOptions: revoked() }],
    ['extraColumns Proxy', { extraColumns: throwing('get') }],
    ['importFrom Proxy', { importFrom: throwing('getPrototypeOf') }],
  ]
  for (const [what, options] of cases) {
    let error
    try {
      new SQLiteStore(':memory:', options).close()
    } catch (thrown) {
      error = thrown
    }
    assertCleanError(error, 'ERR_INVALID_ARG_TYPE', what)
  }
})

// --- 7. What set() accepts, get() returns ---------------------------------------------

test('any session that is a JSON object round-trips, cookie or not; get() does not delete it', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file)
  const cases = [
    ['no cookie', { user: { id: 1 } }, { user: { id: 1 } }],
    ['cookie null', { cookie: null, a: 1 }, { cookie: null, a: 1 }],
    ['toJSON giving another object', { secret: 1, toJSON: () => ({ shown: 2 }) }, { shown: 2 }],
    ['a Map (serializes to {})', new Map([['k', 'v']]), {}],
  ]
  for (const [sid, session, stored] of cases) {
    await store.set(sid, session)
    assert.deepEqual(await store.get(sid), stored, `${sid}: get`)
    assert.deepEqual(await store.get(sid), stored, `${sid}: get again (the row was kept)`)
  }
  assert.deepEqual(
    await store.all(),
    cases.map(([sid, , stored]) => ({ ...stored, id: sid })).sort((a, b) => (a.id < b.id ? -1 : 1)),
  )
  assert.equal(inspect(file).get('SELECT COUNT(*) AS n FROM Sessions').n, cases.length)
  store.close()
})

test('set() refuses, before writing, a session whose JSON is not an object', async () => {
  const store = new SQLiteStore(tempDb())
  const cases = [
    ['a Date', new Date()],
    ['toJSON giving an array', { cookie: {}, toJSON: () => [1, 2] }],
    ['toJSON giving undefined', { cookie: {}, toJSON: () => undefined }],
    ['toJSON giving a number', { cookie: {}, toJSON: () => 42 }],
    ['toJSON giving a string', { cookie: {}, toJSON: () => 'text' }],
    ['toJSON giving null', { cookie: {}, toJSON: () => null }],
  ]
  for (const [what, session] of cases) {
    const [error] = await callback((cb) => store.set('s', session, cb))
    assertCleanError(error, 'ERR_INVALID_SESSION', what)
    assert.match(error.message, /not an object/, what)
  }
  assert.deepEqual(await store.ids(), [], 'nothing written')
  store.close()
})

test("rows another program wrote: JSON objects read as stored, cookie or not; anything else reads as missing and is deleted", async () => {
  const file = tempDb()
  const store = new SQLiteStore(file)
  await store.set('fine', sessionFor('fine'))
  const future = Date.now() + 60_000
  const rows = [
    ['no-cookie', '{"user":"x"}'],
    ['not-json', '{"cookie":'],
    ['array', '[1,2]'],
    ['null', 'null'],
    ['number', '42'],
    ['string', '"text"'],
  ]
  const insert = 'INSERT INTO Sessions (id, data, expires, created, touched) VALUES (?, ?, ?, 0, 0)'
  for (const [sid, data] of rows) inspect(file).run(insert, sid, data, future)
  assert.deepEqual(await store.get('no-cookie'), { user: 'x' })
  for (const [sid] of rows.slice(1)) assert.equal(await store.get(sid), null, sid)
  assert.deepEqual((await store.all()).map((s) => s.id), ['fine', 'no-cookie'])
  assert.deepEqual(
    inspect(file).all('SELECT id FROM Sessions ORDER BY id').map((r) => r.id),
    ['fine', 'no-cookie'],
  )
  store.close()
})
