'use strict'

// memorystore: an LRU-cache MemoryStore that expires sessions, as its README sets it
// up (checkPeriod one day). Not durable.

const { packageVersion } = require('../lib/versions')

module.exports = {
  id: 'memorystore',
  name: 'memorystore',
  durable: false,
  sqlite: false,
  version: packageVersion('memorystore'),
  setup: 'new MemoryStore({ checkPeriod: 86400000 })',
  available: () => (packageVersion('memorystore') ? true : 'not installed (npm install in bench/)'),
  create() {
    const session = require('express-session')
    const MemoryStore = require('memorystore')(session)
    const store = new MemoryStore({ checkPeriod: 86400000 })
    return { store, close: () => store.stopInterval(), prune: () => store.prune() }
  },
}
