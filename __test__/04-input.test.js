'use strict'

// Bad input gets a clear error through the callback and changes nothing; odd but
// valid input round-trips; errors carry codes; ignored rejections never crash.

const test = require('node:test')
const assert = require('node:assert/strict')
const { SQLiteStore } = require('..')
const { tempDb, sessionFor, callback, runScript } = require('./helpers')

const badSids = [undefined, null, 0, 42, NaN, true, {}, [], ['a'], () => 'x', Symbol('s'), 10n, '', 'a\uD800b', '\uDC00', 'x'.repeat(4097), 'x'.repeat(1 << 20)]

test('bad sids: ERR_INVALID_SID TypeError through the callback, for every method, nothing written', async () => {
  const store = new SQLiteStore(tempDb())
  await store.set('existing', sessionFor('e'))
  for (const sid of badSids) {
    for (const [name, invoke] of [
      ['get', (cb) => store.get(sid, cb)],
      ['set', (cb) => store.set(sid, sessionFor('x'), cb)],
      ['destroy', (cb) => store.destroy(sid, cb)],
      ['touch', (cb) => store.touch(sid, sessionFor('x'), cb)],
    ]) {
      const args = await callback(invoke)
      assert.equal(args.length, 1, `${name}: only the error argument`)
      assert.equal(args[0].code, 'ERR_INVALID_SID', `${name}(${String(sid).slice(0, 20)})`)
      assert.ok(args[0] instanceof TypeError)
    }
  }
  assert.deepEqual(await store.ids(), ['existing'])
  await store.close()
})

test('bad sessions: ERR_INVALID_SESSION, nothing written', async () => {
  const store = new SQLiteStore(tempDb())
  const circular = sessionFor('c')
  circular.self = circular
  const throwingGetter = sessionFor('g')
  Object.defineProperty(throwingGetter, 'secret', { enumerable: true, get: () => { throw new Error('nope') } })
  const throwingToJSON = { ...sessionFor('t'), nested: { toJSON: () => { throw new Error('nope') } } }
  for (const session of [undefined, null, 'string', 42, [], [sessionFor('a')], circular, { ...sessionFor('b'), n: 1n }, throwingGetter, throwingToJSON]) {
    const [error] = await callback((cb) => store.set('s', session, cb))
    assert.equal(error.code, 'ERR_INVALID_SESSION', String(session))
    assert.ok(!error.message.includes('nope'), 'the message is ours, not the session content')
  }
  for (const session of [undefined, null, 'string']) {
    const [error] = await callback((cb) => store.touch('s', session, cb))
    assert.equal(error.code, 'ERR_INVALID_SESSION')
  }
  assert.equal(await store.length(), 0)
  await store.close()
})

test('functions and symbols are dropped as JSON drops them; prototype keys stay plain data', async () => {
  const store = new SQLiteStore(tempDb())
  const session = JSON.parse('{"cookie":{},"__proto__":{"polluted":true},"constructor":{"prototype":{"bad":1}}}')
  session.fn = () => 1
  session[Symbol('s')] = 1
  await store.set('p', session)
  const back = await store.get('p')
  assert.equal(back.fn, undefined)
  assert.equal({}.polluted, undefined, 'Object.prototype untouched')
  assert.equal(Object.getPrototypeOf(back), Object.prototype)
  assert.deepEqual(Object.keys(back).sort(), ['__proto__', 'constructor', 'cookie'])
  await store.close()
})

test('unicode and NUL characters round-trip in ids and data', async () => {
  const store = new SQLiteStore(tempDb())
  const sids = ['ü-☃-表-𝄞', 'nul\u0000inside', 'emoji😀', ' spaced id ', "quote'\"`"]
  for (const sid of sids) {
    await store.set(sid, { ...sessionFor('u'), text: `data\u0000${sid}😀\u2028` })
  }
  for (const sid of sids) {
    assert.equal((await store.get(sid)).text, `data\u0000${sid}😀\u2028`, JSON.stringify(sid))
  }
  assert.equal(await store.get('nul'), null, 'NUL does not truncate an id')
  assert.deepEqual((await store.ids()).sort(), [...sids].sort())
  await store.close()
})

test('maxSessionBytes refuses a larger session with ERR_SESSION_TOO_LARGE before writing', async () => {
  const store = new SQLiteStore(tempDb(), { maxSessionBytes: 1000 })
  await store.set('ok', { ...sessionFor('ok'), blob: 'x'.repeat(500) })
  await assert.rejects(store.set('big', { ...sessionFor('big'), blob: 'x'.repeat(1000) }), {
    code: 'ERR_SESSION_TOO_LARGE',
  })
  // Multi-byte characters count as bytes, not characters.
  await assert.rejects(store.set('wide', { ...sessionFor('w'), blob: '€'.repeat(400) }), { code: 'ERR_SESSION_TOO_LARGE' })
  assert.deepEqual(await store.ids(), ['ok'])
  await store.close()
  const defaults = new SQLiteStore(':memory:')
  await defaults.set('mb', { ...sessionFor('mb'), blob: 'x'.repeat(1_000_000) })
  await assert.rejects(defaults.set('over', { ...sessionFor('o'), blob: 'x'.repeat(1_048_577) }), {
    code: 'ERR_SESSION_TOO_LARGE',
  })
  await defaults.close()
})

test('a ttl function that throws or returns a non-number fails that call only', async () => {
  const store = new SQLiteStore(tempDb(), { ttl: (s) => (s.bad ? 'soon' : s.boom ? boom() : 60) })
  function boom() {
    throw new Error('ttl exploded')
  }
  await assert.rejects(store.set('a', { cookie: {}, bad: true }), { code: 'ERR_INVALID_TTL' })
  // Its own message is not passed on: it can quote the session.
  await assert.rejects(store.set('b', { cookie: {}, boom: true }), (error) => error.code === 'ERR_INVALID_TTL' && !error.message.includes('exploded'))
  await store.set('c', { cookie: {} })
  assert.deepEqual(await store.ids(), ['c'])
  await store.close()
})

test('a non-function callback gives a rejected Promise, not a throw', async () => {
  const store = new SQLiteStore(':memory:')
  await assert.rejects(store.get('a', 'not a function'), { code: 'ERR_INVALID_ARG_TYPE' })
  await store.close()
})

test('an ignored rejected Promise does not crash the process', () => {
  const result = runScript(`
    const { SQLiteStore } = require('.')
    const store = new SQLiteStore(':memory:')
    store.get(undefined)
    store.set('x', null)
    store.close()
    store.length()
    setTimeout(() => console.log('still alive'), 50)
  `)
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /still alive/)
})

test('a callback that throws is called once and the error surfaces as uncaught', () => {
  const result = runScript(`
    const { SQLiteStore } = require('.')
    const store = new SQLiteStore(':memory:')
    let calls = 0
    process.on('uncaughtException', (e) => console.log('uncaught', e.message))
    store.set('x', { cookie: {} }, () => { calls++; throw new Error('from callback') })
    for (let i = 0; i < 5; i++) store.set('y' + i, { cookie: {} }, () => { calls++; throw new Error('queued callback') })
    setTimeout(() => { console.log('calls', calls); store.close() }, 200)
  `)
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /calls 6/)
  assert.equal(result.stdout.match(/uncaught/g).length, 6)
})

test('a script that opens a store and does nothing exits by itself', () => {
  const result = runScript(`
    const { SQLiteStore } = require('.')
    const store = new SQLiteStore(require('path').join(require('os').tmpdir(), 'idle-' + process.pid + '.db'))
    store.set('a', { cookie: {} }, () => console.log('written'))
  `, { timeoutMs: 10_000 })
  assert.equal(result.signal, null, 'not killed by the timeout')
  assert.equal(result.code, 0)
  assert.match(result.stdout, /written/)
})

test('sids and data cannot inject SQL: they are always bound values', async () => {
  const file = require('./helpers').tempDb()
  const store = new SQLiteStore(file)
  const hostile = ["x'; DROP TABLE Sessions; --", 'x" OR 1=1 --', "'); DELETE FROM Sessions; --", 'Robert\'); DROP TABLE Students;--']
  await store.set('keep', sessionFor('keep'))
  for (const sid of hostile) {
    await store.set(sid, { ...sessionFor(sid), note: sid })
    assert.equal((await store.get(sid)).note, sid)
    assert.equal(await store.touch(sid, sessionFor(sid)), 'OK')
  }
  assert.equal(await store.destroy(hostile[0]), 1)
  assert.equal(await store.length(), hostile.length)
  assert.equal((await store.get('keep')).user, 'keep')
  await store.close()
})

test(
  'new files are 0600 and new directories 0700; an existing file keeps its mode',
  { skip: process.platform === 'win32' && 'Windows has no POSIX file modes (mode bits there say only read-only or not)' },
  async () => {
    const fs = require('node:fs')
    const path = require('node:path')
    const dir = require('./helpers').tempDir()
    const file = path.join(dir, 'new', 'deeper', 'sessions.db')
    new SQLiteStore(file).close()
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    assert.equal(fs.statSync(path.join(dir, 'new')).mode & 0o777, 0o700)
    assert.equal(fs.statSync(path.join(dir, 'new', 'deeper')).mode & 0o777, 0o700)
    const existing = path.join(dir, 'existing.db')
    new SQLiteStore(existing).close()
    fs.chmodSync(existing, 0o640)
    const store = new SQLiteStore(existing)
    await store.set('s', sessionFor('s'))
    await store.close()
    assert.equal(fs.statSync(existing).mode & 0o777, 0o640)
  },
)

test('error messages, causes and stacks never contain session data', async () => {
  const util = require('node:util')
  const SECRET = 'SECRET-7f3a9c'
  const file = require('./helpers').tempDb()
  const store = new SQLiteStore(file, { maxSessionBytes: 4096 })
  await store.set('seed', sessionFor('seed'))
  const readonly = new SQLiteStore(file, { databaseOptions: { readonly: true } })
  // The secret is in keys and in values, at the top level and nested.
  const secretSession = () => ({ ...sessionFor('s'), [`${SECRET}-key`]: { value: `${SECRET}-value` }, note: SECRET })
  const circular = secretSession()
  circular[`${SECRET}-key`][`${SECRET}-loop`] = circular
  const throwingGetter = secretSession()
  Object.defineProperty(throwingGetter, `${SECRET}-getter`, {
    enumerable: true,
    get: () => {
      throw new Error(`${SECRET} from a getter`)
    },
  })
  const throwingToJSON = { ...secretSession(), nested: { toJSON: () => { throw new Error(`${SECRET} from toJSON`) } } }
  const cases = [
    ['circular', store, circular, 'ERR_INVALID_SESSION'],
    ['throwing getter', store, throwingGetter, 'ERR_INVALID_SESSION'],
    ['throwing toJSON', store, throwingToJSON, 'ERR_INVALID_SESSION'],
    ['too large', store, { ...secretSession(), blob: SECRET.repeat(1000) }, 'ERR_SESSION_TOO_LARGE'],
    ['SQLITE_READONLY write', readonly, secretSession(), 'SQLITE_READONLY'],
  ]
  for (const [name, target, session, code] of cases) {
    const [error] = await callback((cb) => target.set(`${SECRET}-sid`, session, cb))
    assert.equal(error.code, code, name)
    // util.inspect shows the message, the stack, the cause with its own stack, and
    // every other property of the error.
    for (const [what, text] of [
      ['message', error.message],
      ['stack', error.stack],
      ['cause', util.inspect(error.cause)],
      ['inspected error', util.inspect(error, { depth: 5 })],
    ]) {
      assert.ok(!String(text).includes(SECRET), `${name}: the ${what} contains session data: ${text}`)
    }
  }
  assert.deepEqual(await store.ids(), ['seed'], 'nothing was written')
  await readonly.close()
  await store.close()
})
