'use strict'

// The whole contract of every method, callback and promise forms, on a real file (the
// bodies are in contract.js, shared with the cluster's tests).

const test = require('node:test')
const { SQLiteStore } = require('..')
const { tempDb } = require('./helpers')
const { contractTests } = require('./contract')

contractTests(test, (options) => new SQLiteStore(tempDb(), options))

// How answers given on the event loop's thread are timed (lib/core.js, Core#defer): the
// requests one poll phase reads are answered together in the check phase that follows,
// and a call made from an answer is answered in that same phase, without another turn.
test('a get made from an I/O callback is answered in the check phase; a get made from that answer, before the loop turns', async () => {
  const fs = require('node:fs')
  const assert = require('node:assert/strict')
  const { sessionFor } = require('./helpers')
  const store = new SQLiteStore(tempDb())
  try {
    await store.set('a', sessionFor('x'))
    const order = await new Promise((resolve, reject) => {
      const order = []
      // An I/O callback, as Express runs a request from: the poll phase.
      fs.stat(__filename, () => {
        setImmediate(() => order.push('immediate set up before the get'))
        store.get('a', (error, session) => {
          if (error) return reject(error)
          order.push(`get: ${session.user}`)
          setImmediate(() => {
            order.push('immediate set up in the answer')
            resolve(order)
          })
          store.get('a', (error, again) => (error ? reject(error) : order.push(`chained get: ${again.user}`)))
        })
      })
    })
    assert.deepEqual(order, ['immediate set up before the get', 'get: x', 'chained get: x', 'immediate set up in the answer'])
  } finally {
    await store.close()
  }
})
