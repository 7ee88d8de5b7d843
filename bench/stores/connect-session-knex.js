'use strict'

// connect-session-knex on SQLite. Its default knex instance uses knex's "sqlite3"
// client, i.e. the node-sqlite3 package (asynchronous); we build the same instance on
// our own file. (knex's "better-sqlite3" client would not get its SQLite upsert path:
// the store only recognises the "sqlite3" dialect.) Its default cleanupInterval
// (60 s) is kept.

const path = require('node:path')
const { packageVersion } = require('../lib/versions')
const { nativeDepLoads } = require('../lib/native-deps')
const { knexFastWrites } = require('../lib/fast-writes')

module.exports = {
  id: 'knex',
  name: 'connect-session-knex',
  durable: true,
  sqlite: true,
  version: packageVersion('connect-session-knex'),
  drivers: { knex: packageVersion('knex'), sqlite3: packageVersion('sqlite3') },
  setup: "new ConnectSessionKnexStore({ knex: knex({ client: 'sqlite3', connection: { filename }, useNullAsDefault: true }) })",
  notes: ['knex client "sqlite3" (node-sqlite3), one pooled connection, rollback journal'],
  available: () =>
    packageVersion('connect-session-knex') ? nativeDepLoads('sqlite3') : 'not installed (npm install in bench/)',
  async create(dir) {
    const knex = require('knex')
    const { ConnectSessionKnexStore } = require('connect-session-knex')
    const filename = path.join(dir, 'sessions.sqlite')
    const db = knex({ client: 'sqlite3', connection: { filename }, useNullAsDefault: true })
    const store = new ConnectSessionKnexStore({ knex: db })
    await store.ready
    return {
      store,
      files: [filename],
      close: async () => {
        clearTimeout(store.nextDbCleanup)
        await db.destroy()
      },
      prune: () => store.dbCleanup(),
      fastWrites: knexFastWrites(db),
    }
  },
}
