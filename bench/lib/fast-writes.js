'use strict'

// fastWrites(on) for the store modules (see populate.js): while populating, no fsync
// (synchronous = OFF) and, for a rollback journal, the journal kept in memory instead of
// a file created and deleted per commit; afterwards the connection's own settings come
// back. A WAL database keeps its WAL. One factory per driver, because each driver runs
// a PRAGMA differently.

const ROLLBACK = new Set(['delete', 'truncate', 'persist'])

/** Relax/restore over a driver's "run this PRAGMA and give me its one value". */
function relaxer(pragmaValue) {
  let saved
  return async (on) => {
    if (on) {
      saved = {
        synchronous: Number(await pragmaValue('synchronous')),
        journal: String(await pragmaValue('journal_mode')).toLowerCase(),
      }
      await pragmaValue('synchronous = OFF')
      if (ROLLBACK.has(saved.journal)) await pragmaValue('journal_mode = MEMORY')
    } else if (saved) {
      if (ROLLBACK.has(saved.journal)) await pragmaValue(`journal_mode = ${saved.journal.toUpperCase()}`)
      await pragmaValue(`synchronous = ${saved.synchronous}`)
      saved = undefined
    }
  }
}

const firstValue = (row) => (row ? Object.values(row)[0] : undefined)

/** For a better-sqlite3 Database (express-sqlite, better-sqlite3-session-store). */
const betterSqlite3FastWrites = (db) => relaxer((pragma) => db.pragma(pragma, { simple: true }))

/** For a node-sqlite3 Database (connect-sqlite3). */
const sqlite3FastWrites = (db) =>
  relaxer(
    (pragma) =>
      new Promise((resolve, reject) => db.get(`PRAGMA ${pragma}`, (e, row) => (e ? reject(e) : resolve(firstValue(row))))),
  )

/** For knex on SQLite: its pool holds a single connection, so the PRAGMAs stick to it. */
const knexFastWrites = (knex) => relaxer(async (pragma) => firstValue((await knex.raw(`PRAGMA ${pragma}`))[0]))

/** For node:sqlite's DatabaseSync. */
const nodeSqliteFastWrites = (db) => relaxer((pragma) => firstValue(db.prepare(`PRAGMA ${pragma}`).get()))

module.exports = { betterSqlite3FastWrites, sqlite3FastWrites, knexFastWrites, nodeSqliteFastWrites }
