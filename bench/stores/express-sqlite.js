'use strict'

// express-sqlite, the package ours is a drop-in for: better-sqlite3, WAL by default,
// synchronous calls. It stores no expiry and has no touch, so express-session never
// writes on a read and expired sessions are never removed by the store.

const path = require('node:path')
const { packageVersion } = require('../lib/versions')
const { nativeDepLoads } = require('../lib/native-deps')
const { betterSqlite3FastWrites } = require('../lib/fast-writes')

module.exports = {
  id: 'express-sqlite',
  name: 'express-sqlite',
  durable: true,
  sqlite: true,
  version: packageVersion('express-sqlite'),
  drivers: { 'better-sqlite3': packageVersion('better-sqlite3') },
  setup: 'new SQLiteStore(file) (README: WAL on by default)',
  notes: ['no expiry and no touch(): sessions never expire in the store, a read never writes'],
  noPrune: 'stores no expiry, so nothing to prune',
  available: () =>
    packageVersion('express-sqlite') ? nativeDepLoads('better-sqlite3') : 'not installed (npm install in bench/)',
  create(dir) {
    const { SQLiteStore } = require('express-sqlite')
    const file = path.join(dir, 'sessions.db')
    const store = new SQLiteStore(file)
    return { store, files: [file], close: () => store.db.close(), fastWrites: betterSqlite3FastWrites(store.db) }
  },
}
