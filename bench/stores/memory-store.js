'use strict'

// express-session's own MemoryStore: the in-process ceiling. Not durable, not shared
// between processes, and it keeps every session until it is read after expiring.

const { packageVersion } = require('../lib/versions')

module.exports = {
  id: 'memory',
  name: 'MemoryStore',
  durable: false,
  sqlite: false,
  version: packageVersion('express-session'),
  setup: 'new session.MemoryStore()',
  noPrune: 'no public cleanup function (expired sessions go when read)',
  available: () => true,
  create() {
    const session = require('express-session')
    return { store: new session.MemoryStore(), close: () => {} }
  },
}
