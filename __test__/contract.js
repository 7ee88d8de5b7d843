'use strict'

// The whole contract of every method, callback and promise forms: the same test bodies
// for every engine. 01-lifecycle runs them on a real file, 18-cluster on an rqlite cluster.

const assert = require('node:assert/strict')
const { SQLiteStore } = require('..')
const { tempDb, sessionFor, callback } = require('./helpers')

/**
 * @param {import('node:test')} test
 * @param {(options?: object) => SQLiteStore} fresh a store on an empty table of its own
 * @param {string} [prefix] put before each title
 */
function contractTests(test, fresh, prefix = '') {
  /** Another store on the same database and table, as a second process would open it. */
  const again = (store) => new SQLiteStore(store.database.name, { tableName: store.tableName })

  test(`${prefix}set, get, touch, ids, length, all, destroy, clear walk the contract (callbacks)`, async () => {
    const store = fresh()
    assert.deepEqual(await callback((cb) => store.get('nobody', cb)), [undefined, null])

    assert.deepEqual(await callback((cb) => store.set('b', sessionFor('bob'), cb)), [undefined])
    assert.deepEqual(await callback((cb) => store.set('a', sessionFor('alice'), cb)), [undefined])
    const [error, session] = await callback((cb) => store.get('a', cb))
    assert.equal(error, undefined)
    assert.equal(session.user, 'alice')
    assert.equal(typeof session.cookie.expires, 'string', 'cookie comes back as JSON')

    // Overwrite replaces the data.
    await callback((cb) => store.set('a', { ...sessionFor('alice'), visits: 2 }, cb))
    assert.equal((await callback((cb) => store.get('a', cb)))[1].visits, 2)

    assert.deepEqual(await callback((cb) => store.touch('a', sessionFor('alice'), cb)), [undefined, 'OK'])
    assert.deepEqual(await callback((cb) => store.touch('zzz', sessionFor('z'), cb)), [undefined, 'EXPIRED'])

    assert.deepEqual(await callback((cb) => store.ids(cb)), [undefined, ['a', 'b']])
    assert.deepEqual(await callback((cb) => store.length(cb)), [undefined, 2])
    const [allError, sessions] = await callback((cb) => store.all(cb))
    assert.equal(allError, undefined)
    assert.deepEqual(
      sessions.map((s) => [s.id, s.user]),
      [
        ['a', 'alice'],
        ['b', 'bob'],
      ],
    )

    assert.deepEqual(await callback((cb) => store.destroy('a', cb)), [undefined, 1])
    assert.deepEqual(await callback((cb) => store.destroy('a', cb)), [undefined, 0])
    assert.deepEqual(await callback((cb) => store.get('a', cb)), [undefined, null])

    assert.deepEqual(await callback((cb) => store.clear(cb)), [undefined, 1])
    assert.deepEqual(await callback((cb) => store.length(cb)), [undefined, 0])
    await store.close()
  })

  test(`${prefix}every method returns a Promise when called without a callback`, async () => {
    const store = fresh()
    assert.equal(await store.set('p', sessionFor('pat')), undefined)
    assert.equal((await store.get('p')).user, 'pat')
    assert.equal(await store.get('nope'), null)
    assert.equal(await store.touch('p', sessionFor('pat')), 'OK')
    assert.deepEqual(await store.ids(), ['p'])
    assert.equal(await store.length(), 1)
    assert.equal((await store.all())[0].id, 'p')
    assert.equal(await store.destroy('p'), 1)
    await store.set('q', sessionFor('q'))
    assert.equal(await store.clear(), 1)
    await assert.rejects(store.get(42), { code: 'ERR_INVALID_SID', name: 'TypeError' })
    await store.close()
  })

  test(`${prefix}callbacks are never called before the method returns, and exactly once`, async () => {
    const store = fresh({ userKey: (session) => session.user })
    const calls = []
    const run = (name, invoke) =>
      new Promise((resolve) => {
        let returned = false
        let count = 0
        invoke((...args) => {
          count++
          calls.push([name, returned, count])
          setTimeout(() => resolve(args), 5)
        })
        returned = true
      })
    await run('set', (cb) => store.set('x', sessionFor('x'), cb))
    await run('get', (cb) => store.get('x', cb))
    await run('get-missing', (cb) => store.get('missing', cb))
    await run('get-bad-sid', (cb) => store.get(undefined, cb))
    await run('touch', (cb) => store.touch('x', sessionFor('x'), cb))
    await run('ids', (cb) => store.ids(cb))
    await run('length', (cb) => store.length(cb))
    await run('all', (cb) => store.all(cb))
    for (const sid of ['u1', 'u2', 'u3', 'u4']) await store.set(sid, sessionFor('ursula'))
    assert.deepEqual(await run('idsByUser', (cb) => store.idsByUser('ursula', cb)), [undefined, ['u1', 'u2', 'u3', 'u4']])
    assert.deepEqual(await run('destroyByUser-except', (cb) => store.destroyByUser('ursula', { except: 'u1' }, cb)), [undefined, 3])
    assert.deepEqual(await run('destroyByUser', (cb) => store.destroyByUser('ursula', cb)), [undefined, 1])
    const [statsError, stats] = await run('stats', (cb) => store.stats(cb))
    assert.equal(statsError, undefined)
    assert.equal(stats.sessions, 1)
    assert.deepEqual(await run('backup', (cb) => store.backup(tempDb('copy.db'), cb)), [undefined])
    assert.deepEqual(await run('prune', (cb) => store.prune(cb)), [undefined, 0])
    await run('destroy', (cb) => store.destroy('x', cb))
    await run('clear', (cb) => store.clear(cb))
    await run('set-bad-session', (cb) => store.set('x', null, cb))
    await store.close()
    await run('after-close', (cb) => store.get('x', cb))
    for (const [name, returned, count] of calls) {
      assert.equal(returned, true, `${name}: called after returning`)
      assert.equal(count, 1, `${name}: called once`)
    }
    assert.equal(calls.length, 18)
  })

  test(`${prefix}length and stats count every write issued before them, whichever thread runs them`, async () => {
    const store = fresh()
    // Nothing outstanding: counted here and now.
    assert.equal(await store.length(), 0)
    // A write of this turn not yet committed, then a count in the same turn.
    store.set('a', sessionFor(1))
    assert.equal(await store.length(), 1)
    store.destroy('a')
    assert.equal((await store.stats()).sessions, 0)
    // More writes than this thread commits in one turn: they go to the writer thread,
    // and the count queues behind them.
    const writes = Array.from({ length: 300 }, (_, i) => store.set(`w${i}`, sessionFor(i)))
    const counted = store.length()
    const stats = store.stats()
    await Promise.all(writes)
    assert.equal(await counted, 300)
    assert.equal((await stats).sessions, 300)
    // A write answered before the count: counted here and now again.
    await store.destroy('w0')
    assert.equal(await store.length(), 299)
    await store.close()
  })

  test(`${prefix}writes issued together are all committed and all answered (group commit path)`, async () => {
    const store = fresh()
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => store.set(`s${i}`, sessionFor(i))))
    assert.equal(results.length, 500)
    assert.equal(await store.length(), 500)
    // Mixed operations on the same id keep their order.
    const ops = []
    for (let i = 0; i < 50; i++) {
      ops.push(store.set('same', sessionFor(i)))
      ops.push(store.touch('same', sessionFor(i)))
    }
    ops.push(store.destroy('same'))
    await Promise.all(ops)
    assert.equal(await store.get('same'), null)
    await store.close()
    // The data really is stored, seen through a new store on the same database and table.
    const reopened = again(store)
    assert.equal(await reopened.length(), 500)
    assert.equal((await reopened.get('s123')).user, 123)
    await reopened.close()
  })

  test(`${prefix}close is idempotent and later calls fail with ERR_STORE_CLOSED through the callback`, async () => {
    const store = fresh()
    await store.set('a', sessionFor('a'))
    await store.close()
    await store.close()
    for (const invoke of [
      (cb) => store.get('a', cb),
      (cb) => store.set('a', sessionFor('a'), cb),
      (cb) => store.destroy('a', cb),
      (cb) => store.touch('a', sessionFor('a'), cb),
      (cb) => store.all(cb),
      (cb) => store.ids(cb),
      (cb) => store.length(cb),
      (cb) => store.clear(cb),
    ]) {
      const [error] = await callback(invoke)
      assert.equal(error.code, 'ERR_STORE_CLOSED')
      assert.ok(error instanceof Error)
    }
    await assert.rejects(store.length(), { code: 'ERR_STORE_CLOSED' })
  })

  test(`${prefix}writes queued before close still complete`, async () => {
    const store = fresh()
    const pending = Array.from({ length: 100 }, (_, i) => store.set(`k${i}`, sessionFor(i)))
    await store.close()
    const outcomes = await Promise.allSettled(pending)
    assert.ok(outcomes.every((o) => o.status === 'fulfilled'))
    const reopened = again(store)
    assert.equal(await reopened.length(), 100)
    await reopened.close()
  })
}

module.exports = { contractTests }
