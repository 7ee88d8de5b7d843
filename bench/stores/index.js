'use strict'

// The registry of stores under test. Each entry: name, whether it is durable and SQLite
// based, how to get its version, whether it can run here (else a reason), and
// create(dir) -> { store, close(), files, prune?() } on a fresh file in `dir`.

const path = require('node:path')
const session = require('express-session')

const version = (pkg) => {
  try {
    return require(`${pkg}/package.json`).version
  } catch {
    return require(path.join(__dirname, '..', 'node_modules', pkg, 'package.json')).version
  }
}

const stores = [
  {
    name: 'express-sqlite-native',
    durable: true,
    sqlite: true,
    version: () => require('../../package.json').version,
    create(dir) {
      const { SQLiteStore } = require('../..')
      const file = path.join(dir, 'native.db')
      const store = new SQLiteStore(file, { pruneInterval: false })
      return { store, close: () => store.close(), files: [file], prune: () => store.prune() }
    },
  },
  {
    name: 'MemoryStore',
    durable: false,
    sqlite: false,
    version: () => version('express-session'),
    create() {
      const store = new session.MemoryStore()
      return { store, close: () => {}, files: [] }
    },
  },
  require('./node-sqlite'),
  {
    name: 'express-sqlite',
    durable: true,
    sqlite: true,
    version: () => version('express-sqlite'),
    create(dir) {
      const { SQLiteStore } = require('express-sqlite')
      const file = path.join(dir, 'express-sqlite.db')
      const store = new SQLiteStore(file)
      return { store, close: () => store.db.close(), files: [file] }
    },
  },
  {
    name: 'better-sqlite3-session-store',
    durable: true,
    sqlite: true,
    version: () => version('better-sqlite3-session-store'),
    create(dir) {
      const Database = require('better-sqlite3')
      const SqliteStore = require('better-sqlite3-session-store')(session)
      const file = path.join(dir, 'bs3-session-store.db')
      const client = new Database(file)
      // As its README: expired sessions cleared on an interval (here long, prune is measured on demand).
      const store = new SqliteStore({ client, expired: { clear: true, intervalMs: 24 * 3600 * 1000 } })
      return {
        store,
        close: () => {
          clearInterval(store.expiredInterval)
          client.close()
        },
        files: [file],
        prune: () => store.clearExpiredSessions(),
      }
    },
  },
  {
    name: 'connect-sqlite3',
    durable: true,
    sqlite: true,
    version: () => version('connect-sqlite3'),
    create(dir) {
      const SQLiteStore = require('connect-sqlite3')(session)
      const store = new SQLiteStore({ db: 'connect-sqlite3.db', dir })
      return {
        store,
        close: () => new Promise((resolve) => store.db.close(() => resolve())),
        files: [path.join(dir, 'connect-sqlite3.db')],
      }
    },
  },
  {
    name: 'connect-session-knex',
    durable: true,
    sqlite: true,
    version: () => version('connect-session-knex'),
    async create(dir) {
      const file = path.join(dir, 'knex.sqlite')
      const knex = require('knex')({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true })
      const { ConnectSessionKnexStore } = require('connect-session-knex')
      const store = new ConnectSessionKnexStore({ knex, cleanupInterval: 0 })
      await store.ready
      return { store, close: () => knex.destroy(), files: [file], prune: () => store.dbCleanup() }
    },
  },
  {
    name: 'memorystore',
    durable: false,
    sqlite: false,
    version: () => version('memorystore'),
    create() {
      const MemoryStore = require('memorystore')(session)
      const store = new MemoryStore({ checkPeriod: 24 * 3600 * 1000 })
      return { store, close: () => store.stopInterval(), files: [], prune: () => store.prune() }
    },
  },
  require('./redis'),
]

module.exports = { stores }
