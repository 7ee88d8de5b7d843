'use strict'

// Ours: the addon built in the repository root (npm run build), with its defaults
// (WAL, synchronous=NORMAL, writes and prunes on background threads).

const path = require('node:path')
const { ROOT_DIR } = require('../lib/versions')

const rootPackage = require(path.join(ROOT_DIR, 'package.json'))

module.exports = {
  id: 'native',
  name: 'express-sqlite-native',
  ours: true,
  durable: true,
  sqlite: true,
  version: rootPackage.version,
  setup: "new SQLiteStore(file, { wal: true })",
  available() {
    try {
      require(ROOT_DIR)
      return true
    } catch (error) {
      return `the addon does not load (${error.message.split('\n')[0]}); run npm run build in the repository root`
    }
  },
  create(dir) {
    const { SQLiteStore } = require(ROOT_DIR)
    const file = path.join(dir, 'sessions.db')
    const store = new SQLiteStore(file, { wal: true })
    const handle = {
      store,
      files: [file],
      close: () => new Promise((resolve, reject) => store.close((error) => (error ? reject(error) : resolve()))),
    }
    // prune() arrived after this harness; older builds simply have no prune phase.
    if (typeof store.prune === 'function') {
      handle.prune = () => new Promise((resolve, reject) => store.prune((error, n) => (error ? reject(error) : resolve(n))))
    } else {
      handle.noPrune = 'this build has no store.prune()'
    }
    return handle
  },
}
