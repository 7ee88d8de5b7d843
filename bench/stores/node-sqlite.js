'use strict'

// What a Node 24 user could write with no dependency at all: a small store over the
// built-in node:sqlite (DatabaseSync), with the same expiry rules as ours: the cookie's
// expires, else now + cookie.maxAge, else one day; expired sessions are invisible to
// every method; a set whose expiry has passed deletes; touch only moves the expiry of a
// live session. WAL with synchronous=NORMAL, like ours. SQLite runs on the main thread
// (DatabaseSync is synchronous); callbacks are deferred with setImmediate, as
// express-session's MemoryStore does, so callers never see a synchronous callback.

const path = require('node:path')
const { nodeSqliteFastWrites } = require('../lib/fast-writes')
const DAY_MS = 86_400_000

/** When a session expires, in ms since the epoch. */
function expiryOf(session, now) {
  const cookie = session && session.cookie
  if (cookie && cookie.expires != null && cookie.expires !== false) {
    const at = new Date(cookie.expires).getTime()
    if (!Number.isNaN(at)) return at
  }
  if (cookie && typeof cookie.maxAge === 'number' && Number.isFinite(cookie.maxAge)) return now + cookie.maxAge
  return now + DAY_MS
}

/** The store class over a DatabaseSync-compatible constructor (injectable for checks). */
function defineStore(Store, DatabaseSync) {
  return class NodeSqliteStore extends Store {
    constructor(file) {
      super()
      this.db = new DatabaseSync(file)
      this.db.exec(`
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        PRAGMA busy_timeout = 5000;
        CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, data TEXT NOT NULL, expires INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);`)
      const sql = {
        get: 'SELECT data FROM sessions WHERE sid = ? AND expires > ?',
        upsert:
          'INSERT INTO sessions (sid, data, expires) VALUES (?, ?, ?) ' +
          'ON CONFLICT (sid) DO UPDATE SET data = excluded.data, expires = excluded.expires',
        touch: 'UPDATE sessions SET expires = ? WHERE sid = ? AND expires > ?',
        destroy: 'DELETE FROM sessions WHERE sid = ?',
        length: 'SELECT count(*) AS n FROM sessions WHERE expires > ?',
        all: 'SELECT sid, data FROM sessions WHERE expires > ?',
        clear: 'DELETE FROM sessions',
        prune: 'DELETE FROM sessions WHERE expires <= ?',
      }
      this.statements = Object.fromEntries(Object.entries(sql).map(([name, text]) => [name, this.db.prepare(text)]))
    }

    /** Runs `work` now and hands its result (or error) to the callback later. */
    answer(callback, work) {
      let result
      let failure
      try {
        result = work()
      } catch (error) {
        failure = error
      }
      if (typeof callback === 'function') setImmediate(() => (failure ? callback(failure) : callback(null, result)))
    }

    get(sid, callback) {
      this.answer(callback, () => {
        const row = this.statements.get.get(sid, Date.now())
        return row ? JSON.parse(row.data) : null
      })
    }

    set(sid, session, callback) {
      this.answer(callback, () => {
        const now = Date.now()
        const expires = expiryOf(session, now)
        if (expires <= now) this.statements.destroy.run(sid)
        else this.statements.upsert.run(sid, JSON.stringify(session), expires)
      })
    }

    touch(sid, session, callback) {
      this.answer(callback, () => {
        const now = Date.now()
        const { changes } = this.statements.touch.run(expiryOf(session, now), sid, now)
        return Number(changes) > 0 ? 'OK' : 'EXPIRED'
      })
    }

    destroy(sid, callback) {
      this.answer(callback, () => Number(this.statements.destroy.run(sid).changes))
    }

    length(callback) {
      this.answer(callback, () => Number(this.statements.length.get(Date.now()).n))
    }

    all(callback) {
      this.answer(callback, () =>
        this.statements.all.all(Date.now()).map((row) => Object.assign(JSON.parse(row.data), { id: row.sid })),
      )
    }

    clear(callback) {
      this.answer(callback, () => Number(this.statements.clear.run().changes))
    }

    /** Deletes expired rows now, on the main thread; gives the number deleted. */
    prune(callback) {
      this.answer(callback, () => Number(this.statements.prune.run(Date.now()).changes))
    }

    close() {
      this.db.close()
    }
  }
}

function nodeSqlite() {
  try {
    return require('node:sqlite')
  } catch {
    return null
  }
}

module.exports = {
  id: 'node-sqlite',
  name: 'node:sqlite',
  durable: true,
  sqlite: true,
  version: `node ${process.versions.node}`,
  setup: 'bench/stores/node-sqlite.js: a hand-written store over DatabaseSync (WAL, synchronous=NORMAL)',
  notes: ['hand-written baseline, same expiry rules as ours; SQLite on the main thread'],
  available: () =>
    nodeSqlite() ? true : `node:sqlite cannot be loaded in Node ${process.versions.node} (needs 22.13+ or 23.4+; 24 recommended)`,
  create(dir) {
    const { Store } = require('express-session')
    const NodeSqliteStore = defineStore(Store, nodeSqlite().DatabaseSync)
    const file = path.join(dir, 'sessions.db')
    const store = new NodeSqliteStore(file)
    return {
      store,
      files: [file],
      close: () => store.close(),
      prune: () => new Promise((resolve, reject) => store.prune((error, n) => (error ? reject(error) : resolve(n)))),
      fastWrites: nodeSqliteFastWrites(store.db),
    }
  },
  defineStore,
  expiryOf,
}
