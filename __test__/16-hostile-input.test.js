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

/** The sessions tables of a file (not the store's own: table versions, prune leases). */
const tables = (file) =>
  inspect(file)
    .all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'express_sqlite_native_%' ORDER BY name")
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
  await store.close()
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

// --- 6. Hostile sessions: coded errors through the callback, deferred, once -----------

/** Sessions whose reading throws (each with the marker in what it throws) or cannot be stored. */
function hostileSessions() {
  return [
    ['a Proxy with a throwing getPrototypeOf', new Proxy({ cookie: {} }, { getPrototypeOf: boom }), /Proxy/],
    ['a revoked Proxy', revoked(), /Proxy/],
    ['a throwing getter on cookie', Object.defineProperty({}, 'cookie', { enumerable: true, get: boom }), /cookie/],
    ['a throwing getter on cookie.expires', { cookie: Object.defineProperty({}, 'expires', { enumerable: true, get: boom }) }, /cookie/],
    ['a throwing Symbol.toPrimitive on expires', { cookie: { expires: { [Symbol.toPrimitive]: boom } } }, /cookie/],
    ['a Symbol expires', { cookie: { expires: Symbol(MARKER) } }, /Symbol or a BigInt/],
    ['a BigInt expires', { cookie: { expires: 10n } }, /Symbol or a BigInt/],
    ['a revoked Proxy cookie', { cookie: revoked() }, /cookie/],
  ]
}

test('hostile sessions: set() and touch() never throw, call back once, later, with a clean ERR_INVALID_SESSION', async () => {
  const store = new SQLiteStore(tempDb())
  for (const method of ['set', 'touch']) {
    for (const [what, session, kind] of hostileSessions()) {
      const calls = []
      let returned = false
      assert.doesNotThrow(() => store[method]('s', session, (...args) => calls.push({ args, afterReturn: returned })), `${method}: ${what}`)
      returned = true
      await sleep(20)
      assert.equal(calls.length, 1, `${method}: ${what}: called back once`)
      assert.ok(calls[0].afterReturn, `${method}: ${what}: called back after returning`)
      const [error] = calls[0].args
      assertCleanError(error, 'ERR_INVALID_SESSION', `${method}: ${what}`)
      assert.match(error.message, kind, `${method}: ${what}: the message says the kind of problem`)
    }
  }
  // toJSON returning undefined: set() only (touch() does not serialize).
  const [error] = await callback((cb) => store.set('s', { toJSON: () => undefined }, cb))
  assertCleanError(error, 'ERR_INVALID_SESSION', 'toJSON returning undefined')
  assert.match(error.message, /not an object/)
  assert.deepEqual(await store.ids(), [], 'nothing written')
  await store.close()
})

test('hostile sessions, Promise style: set() and touch() reject with the same errors, never throw', async () => {
  const store = new SQLiteStore(':memory:')
  for (const method of ['set', 'touch']) {
    for (const [what, session, kind] of hostileSessions()) {
      let promise
      assert.doesNotThrow(() => {
        promise = store[method]('s', session)
      }, `${method}: ${what}`)
      const error = await promise.then(
        () => assert.fail(`${method}: ${what}: resolved`),
        (e) => e,
      )
      assertCleanError(error, 'ERR_INVALID_SESSION', `${method}: ${what}`)
      assert.match(error.message, kind)
    }
  }
  await store.close()
})

test('a session nested 100,000 deep: ERR_INVALID_SESSION saying it is nested too deeply', async () => {
  const store = new SQLiteStore(':memory:')
  const session = { cookie: {} }
  let inner = session
  for (let i = 0; i < 100_000; i++) inner = inner.next = {}
  const [error] = await callback((cb) => store.set('deep', session, cb))
  assertCleanError(error, 'ERR_INVALID_SESSION', 'deep session')
  assert.match(error.message, /nested too deeply/)
  assert.doesNotMatch(error.message, /getter|toJSON/)
  assert.equal(await store.length(), 0)
  await store.close()
})

test('throwing ttl, userKey and extendDefaultFields functions: their codes, never their messages', async () => {
  const store = new SQLiteStore(':memory:', {
    ttl: (session) => (session.ttlThrows ? boom() : 60),
    userKey: (session) => (session.keyThrows ? boom() : session.user),
    extraColumns: { note: 'TEXT', seen: 'INTEGER', constructor: 'TEXT' },
    extendDefaultFields: (defaults, session) => {
      if (session.fieldsThrow) boom()
      if (session.getterThrows) return Object.defineProperty({}, 'note', { enumerable: true, get: boom })
      if (session.proxyDate) return { seen: new Proxy(new Date(), { getPrototypeOf: boom, get: boom }) }
      if (session.proxyResult) return new Proxy({}, { ownKeys: boom })
      return { note: 'fine' }
    },
  })
  const cases = [
    ['ttl throws', { ttlThrows: true }, 'ERR_INVALID_TTL'],
    ['userKey throws', { cookie: {}, keyThrows: true }, 'ERR_INVALID_USER_KEY'],
    ['extendDefaultFields throws', { cookie: {}, fieldsThrow: true }, 'ERR_INVALID_EXTRA_FIELD'],
    ['a getter of its result throws', { cookie: {}, getterThrows: true }, 'ERR_INVALID_EXTRA_FIELD'],
    ['its result is a Proxy whose trap throws', { cookie: {}, proxyResult: true }, 'ERR_INVALID_EXTRA_FIELD'],
    ['a value is a Proxy of a Date', { cookie: {}, proxyDate: true }, 'ERR_INVALID_EXTRA_FIELD'],
  ]
  for (const [what, session, code] of cases) {
    let calls = 0
    let error
    assert.doesNotThrow(() => store.set('s', session, (e) => ((error = e), calls++)), what)
    await sleep(10)
    assert.equal(calls, 1, `${what}: called back once`)
    assertCleanError(error, code, what)
  }
  // A column named like an Object.prototype member is not filled from Object.prototype.
  await store.set('ok', { cookie: {}, user: 'u' })
  assert.deepEqual(await store.idsByUser('u'), ['ok'])
  assert.deepEqual(await store.ids(), ['ok'], 'nothing else written')
  await store.close()
})

test('every method, given hostile arguments or none, never throws and calls back exactly once, later', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { userKey: (s) => s.user })
  await store.set('s', sessionFor('u'))
  const hostile = [revoked(), new Proxy({}, { getPrototypeOf: boom, get: boom, ownKeys: boom })]
  const calls = []
  for (const closed of [false, true]) {
    if (closed) store.close()
    for (const value of [...hostile, undefined]) {
      const methods = [
        ['get', (cb) => store.get(value, cb)],
        ['set (sid)', (cb) => store.set(value, sessionFor('x'), cb)],
        ['set (session)', (cb) => store.set('s2', value, cb)],
        ['destroy', (cb) => store.destroy(value, cb)],
        ['touch (sid)', (cb) => store.touch(value, sessionFor('x'), cb)],
        ['touch (session)', (cb) => store.touch('s', value, cb)],
        ['all', (cb) => store.all(cb)],
        ['ids', (cb) => store.ids(cb)],
        ['length', (cb) => store.length(cb)],
        ['clear', (cb) => store.clear(cb)],
        ['idsByUser', (cb) => store.idsByUser(value, cb)],
        ['destroyByUser (key)', (cb) => store.destroyByUser(value, cb)],
        ['destroyByUser (options)', (cb) => store.destroyByUser('u', value, cb)],
        ['destroyByUser ({ except })', (cb) => store.destroyByUser('u', { except: value }, cb)],
        ['backup', (cb) => store.backup(value, cb)],
        ['prune', (cb) => store.prune(cb)],
        ['stats', (cb) => store.stats(cb)],
      ]
      for (const [name, invoke] of methods) {
        const call = { name: `${name} (${closed ? 'closed' : 'open'}, ${typeof value})`, count: 0, afterReturn: true }
        let returned = false
        assert.doesNotThrow(
          () =>
            invoke(() => {
              call.count++
              if (!returned) call.afterReturn = false
            }),
          call.name,
        )
        returned = true
        calls.push(call)
      }
    }
  }
  await sleep(200)
  for (const call of calls) {
    assert.equal(call.count, 1, `${call.name}: called back once`)
    assert.ok(call.afterReturn, `${call.name}: called back after returning`)
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
  await store.close()
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
  await store.close()
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
  await store.close()
})

// --- 8. Names that collide -------------------------------------------------------------

test('unpaired surrogates in table, column and import names are TypeErrors; nothing is created', () => {
  const file = tempDb()
  const cases = [
    [{ tableName: 'T\uD800' }, /tableName/],
    [{ tableName: 'T\uDBFF' }, /tableName/],
    [{ tableName: '\uDC00' }, /tableName/],
    [{ extraColumns: { 'col\uD800': 'TEXT' } }, /extraColumns/],
    [{ importFrom: { store: 'connect-session-knex', table: 'old\uDFFF' } }, /table/],
    [{ importFrom: { store: 'connect-session-sequelize', sidColumn: '\uD83Dsid' } }, /sidColumn/],
  ]
  for (const [options, message] of cases) {
    assert.throws(() => new SQLiteStore(file, options), (error) => {
      assert.ok(error instanceof TypeError, String(error))
      assert.equal(error.code, 'ERR_INVALID_ARG_TYPE')
      assert.match(error.message, message)
      assert.match(error.message, /surrogate/)
      return true
    })
  }
  assert.equal(fs.existsSync(file), false, 'no file was created')
  // A paired surrogate is an ordinary character.
  const store = new SQLiteStore(':memory:', { tableName: 'T\uD83D\uDE00' })
  assert.equal(store.tableName, 'T😀')
  store.close()
})

test("the store's lease table and sqlite_ names are refused as table names, in any ASCII case", async () => {
  const cases = [
    ['express_sqlite_native_leases', /lease/],
    ['EXPRESS_SQLITE_NATIVE_LEASES', /lease/],
    ['Express_Sqlite_Native_Leases', /lease/],
    ['sqlite_sessions', /SQLite reserves/],
    ['SQLite_Sessions', /SQLite reserves/],
    ['SQLITE_', /SQLite reserves/],
  ]
  for (const [tableName, why] of cases) {
    assert.throws(
      () => new SQLiteStore(':memory:', { tableName }),
      (error) => error instanceof TypeError && error.code === 'ERR_INVALID_ARG_TYPE' && why.test(error.message),
      tableName,
    )
  }
  // SQLite folds ASCII letters only: a long s (U+017F) is not an "s".
  const store = new SQLiteStore(':memory:', { tableName: '\u017Fqlite_sessions' })
  await store.set('s', sessionFor('s'))
  assert.equal((await store.get('s')).user, 's')
  await store.close()
})

// --- 12. Names from the knex and sequelize stores ----------------------------------------

test('cleanupInterval and checkExpirationInterval <= 0 (their stores use -1) turn pruning off', async () => {
  for (const name of ['cleanupInterval', 'checkExpirationInterval']) {
    for (const value of [-1, -1000, -0.5]) {
      const file = tempDb()
      const store = new SQLiteStore(file, { [name]: value })
      await store.set('old', sessionFor('old', 10))
      await sleep(150)
      assert.equal((await store.stats()).pruneRuns, 0, `${name}: ${value}: no scheduled prune`)
      assert.equal(inspect(file).get('SELECT COUNT(*) AS n FROM Sessions').n, 1, `${name}: ${value}: not pruned`)
      store.close()
    }
  }
  // Our own name and knex's older one keep refusing them (false is their "off").
  for (const options of [{ pruneInterval: 0 }, { pruneInterval: -1 }, { clearInterval: -1 }, { cleanupInterval: -Infinity }, { checkExpirationInterval: NaN }]) {
    assert.throws(() => new SQLiteStore(':memory:', options), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }, JSON.stringify(options))
  }
})

test('stopExpiringSessions() stops scheduled pruning; clearExpiredSessions() deletes expired sessions now (callback or Promise)', async () => {
  const file = tempDb()
  const store = new SQLiteStore(file, { checkExpirationInterval: 100 })
  assert.equal(store.stopExpiringSessions(), undefined)
  await store.set('old-1', sessionFor('old-1', 10))
  await store.set('old-2', sessionFor('old-2', 10))
  await store.set('live', sessionFor('live', 60_000))
  await sleep(400)
  assert.equal((await store.stats()).pruneRuns, 0, 'no scheduled prune after stopExpiringSessions()')
  assert.equal(inspect(file).get('SELECT COUNT(*) AS n FROM Sessions').n, 3, 'expired rows still there')

  const [error, deleted] = await callback((cb) => store.clearExpiredSessions(cb))
  assert.equal(error, undefined)
  assert.equal(deleted, 2)
  assert.equal((await store.stats()).pruneRuns, 1)
  assert.deepEqual(inspect(file).all('SELECT id FROM Sessions').map((r) => r.id), ['live'])

  await store.set('old-3', sessionFor('old-3', 10))
  await sleep(20)
  const promise = store.clearExpiredSessions()
  assert.ok(promise instanceof Promise)
  assert.equal(await promise, 1)
  assert.equal((await store.stats()).pruneRuns, 2)
  assert.deepEqual(inspect(file).all('SELECT id FROM Sessions').map((r) => r.id), ['live'])
  await store.close()
  await assert.rejects(store.clearExpiredSessions(), { code: 'ERR_STORE_CLOSED' })
  assert.doesNotThrow(() => store.stopExpiringSessions(), 'after close: nothing to stop')
})
