'use strict'

// What a Node 24 user can write with no dependency: a small, correct store over the
// built-in node:sqlite, with the same TTL rules as ours (cookie.expires, else
// cookie.maxAge, else one day; expired sessions invisible; set of an expired session
// deletes it; touch only moves the expiry). Synchronous SQLite, deferred callbacks.

const path = require('node:path')
const session = require('express-session')

const DAY = 86_400_000

function expiryOf(sess, now) {
  const cookie = sess.cookie || {}
  if (cookie.expires) return new Date(cookie.expires).getTime()
  if (typeof cookie.maxAge === 'number') return now + cookie.maxAge
  return now + DAY
}

function createStoreClass() {
  const { DatabaseSync } = require('node:sqlite')
  return class NodeSqliteStore extends session.Store {
    constructor(file) {
      super()
      this.db = new DatabaseSync(file)
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000')
      this.db.exec(
        'CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, sess TEXT NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;' +
          'CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires)',
      )
      this.getStmt = this.db.prepare('SELECT sess FROM sessions WHERE sid = ? AND expires > ?')
      this.setStmt = this.db.prepare(
        'INSERT INTO sessions (sid, sess, expires) VALUES (?, ?, ?) ON CONFLICT (sid) DO UPDATE SET sess = excluded.sess, expires = excluded.expires',
      )
      this.touchStmt = this.db.prepare('UPDATE sessions SET expires = ? WHERE sid = ? AND expires > ?')
      this.destroyStmt = this.db.prepare('DELETE FROM sessions WHERE sid = ?')
      this.lengthStmt = this.db.prepare('SELECT COUNT(*) AS n FROM sessions WHERE expires > ?')
      this.allStmt = this.db.prepare('SELECT sid, sess FROM sessions WHERE expires > ?')
      this.clearStmt = this.db.prepare('DELETE FROM sessions')
      this.pruneStmt = this.db.prepare('DELETE FROM sessions WHERE expires <= ?')
    }

    #run(callback, work) {
      let result
      let error
      try {
        result = work()
      } catch (e) {
        error = e
      }
      if (callback) setImmediate(() => (error ? callback(error) : callback(null, result)))
    }

    get(sid, cb) {
      this.#run(cb, () => {
        const row = this.getStmt.get(sid, Date.now())
        return row ? JSON.parse(row.sess) : null
      })
    }

    set(sid, sess, cb) {
      this.#run(cb, () => {
        const now = Date.now()
        const expires = expiryOf(sess, now)
        if (expires <= now) this.destroyStmt.run(sid)
        else this.setStmt.run(sid, JSON.stringify(sess), expires)
      })
    }

    touch(sid, sess, cb) {
      this.#run(cb, () => {
        const now = Date.now()
        this.touchStmt.run(expiryOf(sess, now), sid, now)
      })
    }

    destroy(sid, cb) {
      this.#run(cb, () => void this.destroyStmt.run(sid))
    }

    length(cb) {
      this.#run(cb, () => this.lengthStmt.get(Date.now()).n)
    }

    all(cb) {
      this.#run(cb, () => this.allStmt.all(Date.now()).map((r) => ({ ...JSON.parse(r.sess), id: r.sid })))
    }

    clear(cb) {
      this.#run(cb, () => void this.clearStmt.run())
    }

    prune() {
      return Number(this.pruneStmt.run(Date.now()).changes)
    }
  }
}

module.exports = {
  name: 'node:sqlite (hand-written)',
  durable: true,
  sqlite: true,
  version: () => `node ${process.versions.node}`,
  available() {
    try {
      require('node:sqlite')
      return true
    } catch {
      return `node:sqlite is not in Node ${process.versions.node}`
    }
  },
  create(dir) {
    const NodeSqliteStore = createStoreClass()
    const file = path.join(dir, 'node-sqlite.db')
    const store = new NodeSqliteStore(file)
    return { store, close: () => store.db.close(), files: [file], prune: () => store.prune() }
  },
}
