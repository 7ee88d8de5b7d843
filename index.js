'use strict'

// SQLiteStore: express-session's Store over SQLite. This file validates arguments,
// computes expiry and serializes sessions; everything that touches SQLite is native.

const { Store } = require('express-session')

const { Database, kCore, databaseFor } = require('./lib/database')
const { Op } = require('./lib/native')
const { storeOptions, snapshot, validate, isPlainObject, typeError } = require('./lib/options')
const { callbackOrPromise } = require('./lib/callbacks')
const { closedError } = require('./lib/errors')
const { invalidSid, parseSession, sessionTypeError, sessionJson } = require('./lib/sessions')
const { expiryMs } = require('./lib/ttl')
const { sessionColumns, normalizeUserKey, invalidUserKey } = require('./lib/columns')

/** destroyByUser's second argument. */
const DESTROY_BY_USER_OPTIONS = { __proto__: null, except: () => true }

class SQLiteStore extends Store {
  #db
  #ownsDb
  #core
  #table
  #options
  #columns
  #closed = false
  #disconnected = false
  #stopFatal
  #stopBackground
  #stopConnection
  #touchesSkipped = 0

  /**
   * @param {string | Buffer | Database | object} database a path, ":memory:", a serialized
   *   database, a Database of this package, or a better-sqlite3 Database (file-backed)
   * @param {object} [options] see README: tableName, wal, databaseOptions, ttl, ...
   */
  constructor(database, options) {
    super()
    const opts = storeOptions(options)
    const { db, owned } = databaseFor(database, opts)
    this.#db = db
    this.#ownsDb = owned
    this.#core = db[kCore]
    this.#options = opts
    const defaultTtlMs = typeof opts.ttl === 'number' ? opts.ttl * 1000 : 86400 * 1000
    const maxLifetimeMs = opts.maxLifetime === undefined ? null : Math.round(opts.maxLifetime * 1000)
    const pruneIntervalMs = opts.pruneInterval === false ? null : Math.round(opts.pruneInterval * 1000)
    this.#columns = sessionColumns(opts)
    try {
      this.#table = this.#core.openTable(
        opts.tableName,
        opts.createTable,
        defaultTtlMs,
        maxLifetimeMs,
        pruneIntervalMs,
        this.#columns.extra,
        opts.importFrom,
      )
    } catch (error) {
      if (owned) db.close()
      throw error
    }
    this.#stopFatal = this.#core.onFatal((error) => this.#unusable(error))
    // A scheduled prune that fails has no caller to tell: 'error', if anyone listens
    // (an 'error' event nobody listens to would crash the process), and stats().
    this.#stopBackground = this.#core.onBackgroundError((error) => {
      if (this.listenerCount('error') > 0) process.nextTick(() => this.emit('error', error))
    })
    // A cluster that stops answering comes back: 'disconnect', then 'connect' again.
    this.#stopConnection = this.#core.onConnection((error) => {
      if (error !== undefined) return this.#unusable(error)
      if (!this.#disconnected) return
      this.#disconnected = false
      process.nextTick(() => this.emit('connect'))
    })
    process.nextTick(() => this.emit('connect'))
  }

  /** The database failed in a way that will not pass: tell express-session (it then
   *  serves requests without sessions) and, only if someone listens, the error. */
  #unusable(error) {
    if (this.listenerCount('error') > 0) process.nextTick(() => this.emit('error', error))
    if (this.#disconnected) return
    this.#disconnected = true
    process.nextTick(() => this.emit('disconnect'))
  }

  /** The table sessions are kept in. */
  get tableName() {
    return this.#options.tableName
  }

  /** The Database this store works on. */
  get database() {
    return this.#db
  }

  #usable(done) {
    if (!this.#closed) return true
    this.#core.defer(done, closedError())
    return false
  }

  #usableWith(done, sid) {
    if (!this.#usable(done)) return false
    const error = invalidSid(sid)
    if (error) this.#core.defer(done, error)
    return error === undefined
  }

  #bulk(done, op, adapt, key) {
    if (!this.#usable(done)) return
    this.#core.queue((error, value) => (error ? done(error) : done(undefined, adapt(value))), { table: this.#table, op, key })
  }

  get(sid, callback) {
    return callbackOrPromise(callback, (done) => {
      if (!this.#usableWith(done, sid)) return
      this.#core.get(this.#table, sid, (error, entry) => this.#gotSession(done, sid, error, entry))
    })
  }

  /** get()'s second half, once the entry is read (at once, or from a cluster). */
  #gotSession(done, sid, error, entry) {
    if (error !== undefined) return this.#core.defer(done, error)
    if (entry === null) return this.#core.defer(done, undefined, null)
    const [json, expires] = entry
    const session = parseSession(json)
    if (session === undefined) {
      // Not a session at all (another program's row): drop it and report none.
      return this.#core.write((error) => done(error, null), { table: this.#table, op: Op.Destroy, sid })
    }
    // touch() moves only the stored expiry, not the cookie inside the JSON: give the
    // cookie the stored expiry, so that a session saved after touches (rolling) keeps
    // the expiry the touches gave it, as with MemoryStore.
    if (isPlainObject(session.cookie) && typeof session.cookie.expires === 'string') {
      session.cookie.expires = new Date(expires).toISOString()
    }
    this.#core.defer(done, undefined, session)
  }

  set(sid, session, callback) {
    return callbackOrPromise(callback, (done) => {
      if (!this.#usableWith(done, sid)) return
      const invalid = sessionTypeError(session)
      if (invalid) return this.#core.defer(done, invalid)
      let json, expires, key, extras
      const now = Date.now()
      try {
        expires = expiryMs(session, now, this.#options.ttl)
        json = sessionJson(session, this.#options.maxSessionBytes)
        ;[key, ...extras] = this.#columns.values(session, json, expires)
      } catch (error) {
        return this.#core.defer(done, error)
      }
      const finish = (error) => done(error)
      if (expires <= now) return this.#core.write(finish, { table: this.#table, op: Op.Destroy, sid })
      // Absent fields are undefined, never null (the native side reads null as a value).
      const job = { table: this.#table, op: Op.Set, sid, data: json, expires, key: key ?? undefined, extras: extras.length > 0 ? extras : undefined }
      this.#core.write(finish, job)
    })
  }

  destroy(sid, callback) {
    return callbackOrPromise(callback, (done) => {
      if (!this.#usableWith(done, sid)) return
      this.#core.write(done, { table: this.#table, op: Op.Destroy, sid })
    })
  }

  touch(sid, session, callback) {
    return callbackOrPromise(callback, (done) => {
      if (!this.#usableWith(done, sid)) return
      const invalid = sessionTypeError(session)
      if (invalid) return this.#core.defer(done, invalid)
      const now = Date.now()
      let expires
      try {
        expires = expiryMs(session, now, this.#options.ttl)
      } catch (error) {
        return this.#core.defer(done, error)
      }
      if (!this.#options.disableTouch && this.#options.touchAfter === 0) return this.#touchNow(done, sid, expires)
      this.#core.lastWrite(this.#table, sid, (error, lastWrite) => {
        if (error !== undefined) return this.#core.defer(done, error)
        if (lastWrite === null) return this.#core.defer(done, undefined, 'EXPIRED')
        if (this.#options.disableTouch || now - lastWrite < this.#options.touchAfter * 1000) {
          this.#touchesSkipped++
          return this.#core.defer(done, undefined, 'OK')
        }
        this.#touchNow(done, sid, expires)
      })
    })
  }

  /** touch()'s write, unless the stored expiry is already this one to within a cookie's precision. */
  #touchNow(done, sid, expires) {
    if (this.#core.touchIsCurrent(this.#table, sid, expires)) {
      this.#touchesSkipped++
      return this.#core.defer(done, undefined, 'OK')
    }
    this.#core.write(
      (error, changed) => (error ? done(error) : done(undefined, changed > 0 ? 'OK' : 'EXPIRED')),
      { table: this.#table, op: Op.Touch, sid, expires },
    )
  }

  all(callback) {
    return callbackOrPromise(callback, (done) =>
      this.#bulk(done, Op.All, (pairs) => {
        const sessions = []
        for (let i = 0; i < pairs.length; i += 2) {
          const session = parseSession(pairs[i + 1])
          if (session !== undefined) sessions.push(Object.assign(session, { id: pairs[i] }))
        }
        return sessions
      }),
    )
  }

  ids(callback) {
    return callbackOrPromise(callback, (done) => this.#bulk(done, Op.Ids, (ids) => ids))
  }

  length(callback) {
    return callbackOrPromise(callback, (done) => {
      if (this.#usable(done)) this.#core.count(done, { table: this.#table, op: Op.Length })
    })
  }

  clear(callback) {
    return callbackOrPromise(callback, (done) => {
      if (!this.#usable(done)) return
      this.#core.write(done, { table: this.#table, op: Op.Clear })
    })
  }

  /** The live session ids of a user (see the userKey option). */
  idsByUser(key, callback) {
    return callbackOrPromise(callback, (done) => {
      const userKey = normalizeUserKey(key)
      if (userKey === undefined) return this.#core.defer(done, invalidUserKey())
      this.#bulk(done, Op.IdsByUser, (ids) => ids, userKey)
    })
  }

  /**
   * Ends every live session of a user ("log out everywhere"), or all but
   * `options.except` ("log out other devices"). Gives the number ended.
   */
  destroyByUser(key, options, callback) {
    if (typeof options === 'function') [options, callback] = [undefined, options]
    return callbackOrPromise(callback, (done) => {
      const userKey = normalizeUserKey(key)
      if (userKey === undefined) return this.#core.defer(done, invalidUserKey())
      let except
      try {
        // Read once, own properties only, like the store's options.
        ;({ except } = validate(snapshot(options, 'destroyByUser options'), DESTROY_BY_USER_OPTIONS, 'destroyByUser options'))
      } catch (error) {
        return this.#core.defer(done, error)
      }
      if (except !== undefined && invalidSid(except)) return this.#core.defer(done, invalidSid(except))
      if (!this.#usable(done)) return
      this.#core.write(done, { table: this.#table, op: Op.DestroyByUser, sid: except, key: userKey })
    })
  }

  /**
   * Live and expired-but-unpruned sessions, file and WAL size, and the counters of
   * pruning, skipped touches and lock waits. Two indexed counts; fine to poll.
   */
  stats(callback) {
    return callbackOrPromise(callback, (done) => {
      if (!this.#usable(done)) return
      // Both counts see every write issued before this call (see Core#count).
      this.#core.count((error, sessions) => {
        if (error) return done(error)
        this.#core.count((error, expired) => {
          if (error) return done(error)
          let counters
          try {
            counters = this.#core.counters()
          } catch (error) {
            return done(error)
          }
          done(undefined, {
            sessions,
            expired,
            fileBytes: counters.fileBytes,
            walBytes: counters.walBytes,
            pruneRuns: counters.pruneRuns,
            rowsPruned: counters.rowsPruned,
            prunesSkipped: counters.prunesSkipped,
            pruneErrors: counters.pruneErrors,
            touchesSkipped: this.#touchesSkipped,
            busyRetries: counters.busyRetries,
            checkpoints: counters.checkpoints,
            cachedReads: counters.cachedReads,
          })
        }, { table: this.#table, op: Op.CountExpired })
      }, { table: this.#table, op: Op.Length })
    })
  }

  /** The whole database as a Buffer: saves an in-memory or Buffer-opened store. */
  serialize() {
    if (this.#closed) throw closedError()
    return this.#db.serialize()
  }

  /** Writes a consistent copy of the live database to `path` (SQLite's online backup). */
  backup(path, callback) {
    return callbackOrPromise(callback, (done) => {
      if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
        return this.#core.defer(done, typeError('backup needs a file path'))
      }
      if (this.#usable(done)) this.#core.backup((error) => done(error), path)
    })
  }

  /**
   * connect-session-sequelize's sync(): creates the table, with any column or index it
   * lacks, if it is missing (dropped since the store opened, say), whatever
   * `createTable` says: calling it is the request. With `importFrom`, imports first.
   * The store keeps its table handle and pruning schedule.
   */
  sync() {
    return callbackOrPromise(undefined, (done) => {
      if (!this.#usable(done)) return
      try {
        this.#core.syncTable(this.#table)
      } catch (error) {
        return this.#core.defer(done, error)
      }
      this.#core.defer(done)
    })
  }

  /** Stops the background pruning (connect-session-knex's name for it). */
  stopDbCleanup() {
    if (!this.#closed) this.#core.stopPruning(this.#table)
  }

  /** connect-session-sequelize's name for stopDbCleanup(). */
  stopExpiringSessions() {
    this.stopDbCleanup()
  }

  /** Deletes expired sessions now, on a background thread; gives the number deleted. */
  prune(callback) {
    return callbackOrPromise(callback, (done) => {
      if (this.#usable(done)) this.#core.prune(done, this.#table)
    })
  }

  /** connect-session-sequelize's name for prune(). */
  clearExpiredSessions(callback) {
    return this.prune(callback)
  }

  /**
   * Stops the store. Writes already queued still complete. Closes the database only
   * if the store opened it, on a native thread: the callback (or Promise) says when the
   * file is closed, and the event loop never waits for it. Idempotent; later calls of
   * any method get ERR_STORE_CLOSED.
   */
  /**
   * Copies every live session, with its expiry, into another store (a file into a
   * cluster, a cluster into a file, one table into another); sessions already there
   * under the same id are overwritten. Resolves with the number copied. Sessions are
   * read in one consistent pass and written in group commits.
   */
  copyTo(target, callback) {
    return callbackOrPromise(callback, (done) => {
      if (!(target instanceof SQLiteStore) || target === this) {
        return this.#core.defer(done, typeError('copyTo needs another SQLiteStore'))
      }
      if (!this.#usable(done)) return
      this.#core.queue((error, entries) => (error ? done(error) : target.#importEntries(entries, done)), {
        table: this.#table,
        op: Op.Export,
      })
    })
  }

  /** copyTo's second half, on the target: `entries` is id, JSON, expiry (text), ... */
  #importEntries(entries, done) {
    if (!this.#usable(done)) return
    let left = 1
    let copied = 0
    let failure
    const finish = (error) => {
      if (error && failure === undefined) failure = error
      if (--left === 0) done(failure, failure === undefined ? copied : undefined)
    }
    const now = Date.now()
    for (let i = 0; i < entries.length; i += 3) {
      const [sid, json, expires] = [entries[i], entries[i + 1], Number(entries[i + 2])]
      const session = parseSession(json)
      // Expired since it was read: not copied (a set of it would be a delete).
      if (session === undefined || expires <= now) continue
      let key, extras
      try {
        ;[key, ...extras] = this.#columns.values(session, json, expires)
      } catch (error) {
        failure ??= error
        continue
      }
      left++
      copied++
      const job = { table: this.#table, op: Op.Set, sid, data: json, expires, key: key ?? undefined, extras: extras.length > 0 ? extras : undefined }
      this.#core.write(finish, job)
    }
    finish()
  }

  close(callback) {
    return callbackOrPromise(callback, (done) => {
      if (this.#closed) return process.nextTick(done)
      this.#closed = true
      this.#core.stopPruning(this.#table)
      this.#stopFatal()
      this.#stopBackground()
      this.#stopConnection()
      if (!this.#disconnected) {
        this.#disconnected = true
        process.nextTick(() => this.emit('disconnect'))
      }
      if (this.#ownsDb) this.#db.close(done)
      else process.nextTick(done)
    })
  }
}

module.exports = { SQLiteStore, Database }
module.exports.default = SQLiteStore
