'use strict'

// connect-sqlite3 as its README sets it up for Express 4+: it opens the file itself
// with node-sqlite3 (asynchronous, libuv thread pool), rollback journal.

const { once } = require('node:events')
const path = require('node:path')
const { packageVersion } = require('../lib/versions')
const { nativeDepLoads } = require('../lib/native-deps')
const { sqlite3FastWrites } = require('../lib/fast-writes')

module.exports = {
  id: 'connect-sqlite3',
  name: 'connect-sqlite3',
  durable: true,
  sqlite: true,
  version: packageVersion('connect-sqlite3'),
  drivers: { sqlite3: packageVersion('sqlite3') },
  setup: "new SQLiteStore({ db: 'sessions.db', dir })",
  notes: ['touch() only writes when the cookie has an expiry'],
  noPrune: 'no public cleanup function (it deletes expired rows once a day internally)',
  available: () =>
    packageVersion('connect-sqlite3') ? nativeDepLoads('sqlite3') : 'not installed (npm install in bench/)',
  async create(dir) {
    const session = require('express-session')
    const SQLiteStore = require('connect-sqlite3')(session)
    const store = new SQLiteStore({ db: 'sessions.db', dir })
    // It creates its table asynchronously and says so with this event.
    await once(store.client, 'connect')
    return {
      store,
      files: [path.join(dir, 'sessions.db')],
      close: () => new Promise((resolve, reject) => store.db.close((error) => (error ? reject(error) : resolve()))),
      fastWrites: sqlite3FastWrites(store.db),
    }
  },
}
