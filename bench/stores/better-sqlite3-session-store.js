'use strict'

// better-sqlite3-session-store as its README sets it up: a better-sqlite3 handle opened
// by the app (default rollback journal, synchronous=FULL) and a 15-minute cleanup
// interval. Its calls are synchronous.

const path = require('node:path')
const { packageVersion } = require('../lib/versions')
const { nativeDepLoads } = require('../lib/native-deps')
const { betterSqlite3FastWrites } = require('../lib/fast-writes')

module.exports = {
  id: 'better-sqlite3-session-store',
  name: 'better-sqlite3-session-store',
  durable: true,
  sqlite: true,
  version: packageVersion('better-sqlite3-session-store'),
  drivers: { 'better-sqlite3': packageVersion('better-sqlite3') },
  setup: "new SqliteStore({ client: new Database(file), expired: { clear: true, intervalMs: 900000 } })",
  notes: ['README setup leaves the rollback journal (no WAL): every write is fsynced'],
  available: () =>
    packageVersion('better-sqlite3-session-store') ? nativeDepLoads('better-sqlite3') : 'not installed (npm install in bench/)',
  create(dir) {
    const session = require('express-session')
    const Database = require('better-sqlite3')
    const SqliteStore = require('better-sqlite3-session-store')(session)
    const file = path.join(dir, 'sessions.db')
    const client = new Database(file)
    const store = new SqliteStore({ client, expired: { clear: true, intervalMs: 900000 } })
    return {
      store,
      files: [file],
      // Its interval cannot be cleared (the handle is not kept); the bench processes
      // exit explicitly, long before it would fire.
      close: () => client.close(),
      prune: () => store.clearExpiredSessions(),
      fastWrites: betterSqlite3FastWrites(client),
    }
  },
}
