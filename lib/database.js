'use strict'

// The public `Database`: one SQLite database that one or several stores use (for
// example two session tables in one file). A store closes only a Database it opened.

const fs = require('node:fs')
const { Core } = require('./core')
const { databaseOptions, typeError } = require('./options')
const { storeError } = require('./errors')
const { callbackOrPromise } = require('./callbacks')
const { isClusterAddress, parseClusterAddress } = require('./cluster')

const kCore = Symbol('express-sqlite-native.core')

/** Where the database lives, for the native layer: a path, an image, or null (memory). */
function locationOf(database) {
  if (typeof database === 'string') {
    if (database.length === 0) throw typeError('database must be a non-empty path, ":memory:", a Buffer or a Database')
    if (database.includes('\0')) throw typeError('database path must not contain NUL characters')
    return database === ':memory:' ? null : database
  }
  if (database instanceof Uint8Array) return Buffer.from(database.buffer, database.byteOffset, database.byteLength)
  throw typeError('database must be a file path, ":memory:", a Buffer or a Database')
}

class Database {
  #name
  #readonly

  /**
   * @param {string | Buffer} database a file path, ":memory:", a serialized database, or
   *   an rqlite cluster's address (rqlite://host:port,host:port)
   * @param {object} [options] readonly, fileMustExist, timeout (ms), wal, synchronous,
   *   cacheSize (MiB); for a cluster: timeout, consistency, username, password, ca
   */
  constructor(database, options) {
    const opts = databaseOptions(options)
    if (isClusterAddress(database)) {
      const cluster = parseClusterAddress(database)
      this.#name = cluster.name
      this.#readonly = false
      const location = {
        nodes: cluster.nodes,
        username: opts.username ?? cluster.username,
        password: opts.password ?? cluster.password,
        level: opts.consistency,
        timeout: opts.timeout,
        ca: opts.ca,
      }
      const unused = { readonly: false, fileMustExist: false, timeout: opts.timeout, wal: false, cacheSize: 0 }
      Object.defineProperty(this, kCore, { value: new Core(location, unused) })
      return
    }
    const location = locationOf(database)
    this.#name = typeof database === 'string' ? database : ':memory:'
    this.#readonly = opts.readonly
    const walForFile = location !== null && typeof location === 'string' && opts.wal
    Object.defineProperty(this, kCore, {
      value: new Core(location, {
        readonly: opts.readonly,
        fileMustExist: opts.fileMustExist,
        timeout: opts.timeout,
        wal: walForFile,
        synchronous: opts.synchronous,
        cacheSize: opts.cacheSize,
      }),
    })
  }

  get name() {
    return this.#name
  }

  get memory() {
    return this[kCore].memory
  }

  get readonly() {
    return this.#readonly
  }

  get open() {
    return !this[kCore].closed
  }

  /** The whole database as a Buffer (a serialized SQLite image). */
  serialize() {
    return this[kCore].serialize()
  }

  /**
   * Finishes queued writes, checkpoints and closes, off the event loop; the callback
   * (or the returned Promise) tells when the file is closed. Closing twice does nothing.
   */
  close(callback) {
    return callbackOrPromise(callback, (done) => this[kCore].close(done))
  }
}

/** A better-sqlite3 Database, recognised by its shape rather than by `instanceof`. */
function isBetterSqlite3(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.prepare === 'function' &&
    typeof value.pragma === 'function' &&
    typeof value.name === 'string' &&
    typeof value.memory === 'boolean'
  )
}

const noTable = (name) => storeError('ERR_NO_TABLE', `table "${name}" does not exist and createTable is false`)

/** Opens (or adopts) the Database a store works on; says whether the store owns it. */
function databaseFor(database, options) {
  if (database instanceof Database) return { db: database, owned: false }
  if (isBetterSqlite3(database)) {
    if (database.memory) {
      throw typeError('an in-memory better-sqlite3 database cannot be shared: pass ":memory:" or a Buffer instead')
    }
    if (database.open === false) throw typeError('the better-sqlite3 database is closed')
    // The same file through our own connections; its journal mode is left as the app set it.
    const db = new Database(database.name, {
      ...options.databaseOptions,
      readonly: database.readonly,
      fileMustExist: true,
      wal: false,
    })
    return { db, owned: true }
  }
  // createTable: false never changes the file: not its tables, not its journal mode.
  const isFile = typeof database === 'string' && database !== ':memory:' && !isClusterAddress(database)
  if (!options.createTable && isFile && !fs.existsSync(database)) {
    throw noTable(options.tableName)
  }
  const db = new Database(database, {
    ...options.databaseOptions,
    wal: options.createTable ? options.wal : false,
    synchronous: options.synchronous,
  })
  return { db, owned: true }
}

module.exports = { Database, kCore, databaseFor }
