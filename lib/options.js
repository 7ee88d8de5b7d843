'use strict'

// Validation of every option the store and the database take. Each option is checked
// by one line in a table; anything of the wrong type or not in the table is a TypeError
// naming it, before any file is touched.

const { storeError } = require('./errors')

const typeError = (message) => storeError('ERR_INVALID_ARG_TYPE', message, TypeError)

const isPlainObject = (value) =>
  value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value)

const LONE_SURROGATE = /\p{Surrogate}/u

/** The store's own tables: pruning leases (src/upkeep.rs), table versions (src/schema.rs). */
const STORE_TABLES = {
  express_sqlite_native_leases: "the table of the store's pruning leases",
  express_sqlite_native_schema: "the table of the store's table versions",
}

/** SQLite compares names ignoring the case of ASCII letters only. */
const asciiLowerCase = (name) => name.replace(/[A-Z]+/g, (letters) => letters.toLowerCase())

/**
 * A table or column name: text SQLite stores as it is. NUL would cut it short, and a
 * lone surrogate becomes U+FFFD in UTF-8, so two different names would meet in one.
 */
const isName = (value) => typeof value === 'string' && value.length > 0 && !value.includes('\0') && !LONE_SURROGATE.test(value)

/**
 * The own enumerable properties of an options object, each read exactly once, in an
 * object without a prototype: what everything afterwards reads. A polluted
 * Object.prototype then supplies nothing, and a getter or Proxy cannot answer one
 * thing to the checks and another to the code that uses the option.
 */
function snapshot(input, what) {
  const copy = Object.create(null)
  if (input === undefined) return copy
  // What a getter or trap threw is not passed on: its message is someone else's.
  const unreadable = () => typeError(`${what} could not be read: a getter or Proxy trap in it threw`)
  let isObject
  try {
    isObject = isPlainObject(input)
  } catch {
    throw unreadable()
  }
  if (!isObject) throw typeError(`${what} must be an object`)
  try {
    for (const name of Object.keys(input)) copy[name] = input[name]
  } catch {
    throw unreadable()
  }
  return copy
}

const check = {
  boolean: (value) => typeof value === 'boolean' || 'a boolean',
  nonEmptyString: (value) => (typeof value === 'string' && value.length > 0) || 'a non-empty string',
  tableName: (value) => {
    if (!isName(value)) return 'a non-empty string without NUL or unpaired surrogates'
    const name = asciiLowerCase(value)
    if (Object.hasOwn(STORE_TABLES, name)) return `another name than ${name}, ${STORE_TABLES[name]}`
    if (name.startsWith('sqlite_')) return 'a name not starting with "sqlite_" (in any case): SQLite reserves those'
    return true
  },
  nonNegativeInteger: (value) => (Number.isSafeInteger(value) && value >= 0) || 'a non-negative integer',
  positiveSeconds: (value) => (typeof value === 'number' && Number.isFinite(value) && value > 0) || 'a positive number of seconds',
  nonNegativeSeconds: (value) => (typeof value === 'number' && Number.isFinite(value) && value >= 0) || 'a non-negative number of seconds',
  ttl: (value) =>
    typeof value === 'function' ||
    (typeof value === 'number' && Number.isFinite(value) && value > 0) ||
    'a positive number of seconds or a function (session) => seconds',
  positiveInteger: (value) => (Number.isSafeInteger(value) && value > 0) || 'a positive integer',
  function: (value) => typeof value === 'function' || 'a function',
  synchronous: (value) => value === 'NORMAL' || value === 'FULL' || "'NORMAL' or 'FULL'",
  databaseOptions: (value) => isPlainObject(value) || 'an object',
  milliseconds: (value) =>
    (typeof value === 'number' && Number.isFinite(value) && value > 0) || 'a positive number of milliseconds',
  intervalMs: (value) =>
    value === false ||
    (typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= 4_000_000_000) ||
    'false or a positive number of milliseconds',
  // 0 and below included: connect-session-knex v5 and connect-session-sequelize turn
  // their cleanup off with any value <= 0 (their own tests use -1), so it means the same
  // here. (Knex before v5 read a 0 clearInterval as its default of 60 s, so there 0 and
  // below stay refused rather than guessed at.)
  intervalMsOrOff: (value) =>
    (typeof value === 'number' && value <= 0 && Number.isFinite(value)) ||
    check.intervalMs(value) === true ||
    'false, a number <= 0 (no pruning) or a positive number of milliseconds',
  extraColumns: (value) =>
    (isPlainObject(value) &&
      Object.entries(value).every(
        ([name, type]) => isName(name) && ['TEXT', 'INTEGER', 'REAL', 'NUMERIC', 'BLOB'].includes(type),
      )) ||
    "an object of column name (without NUL or unpaired surrogates) to 'TEXT' | 'INTEGER' | 'REAL' | 'NUMERIC' | 'BLOB'",
  importFrom: (value) => {
    const stores = ['connect-session-knex', 'connect-session-sequelize']
    if (stores.includes(value)) return true
    if (!isPlainObject(value) || !stores.includes(value.store)) return `one of ${stores.join(', ')}, or { store, table, sidColumn }`
    const extra = Object.keys(value).find((k) => !['store', 'table', 'sidColumn'].includes(k))
    if (extra) return `{ store, table, sidColumn } (unknown "${extra}")`
    for (const k of ['table', 'sidColumn']) {
      if (value[k] !== undefined && !isName(value[k])) {
        return `{ store, table, sidColumn } with ${k} a non-empty string without NUL or unpaired surrogates`
      }
    }
    return true
  },
  pruneInterval: (value) =>
    value === false ||
    (typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= 4_000_000) ||
    'false or a number of seconds between 0 and 4,000,000',
}

const DATABASE_OPTIONS = {
  readonly: check.boolean,
  fileMustExist: check.boolean,
  timeout: check.nonNegativeInteger,
  wal: check.boolean,
  synchronous: check.synchronous,
  cacheSize: (value) => (Number.isSafeInteger(value) && value >= 0 && value <= 65536) || 'an integer number of MiB from 0 to 65536',
  // An rqlite cluster's (see lib/cluster.js); a file ignores them.
  consistency: (value) =>
    ['none', 'weak', 'linearizable', 'strong'].includes(value) || "'none', 'weak', 'linearizable' or 'strong'",
  username: check.nonEmptyString,
  password: (value) => typeof value === 'string' || 'a string',
  ca: (value) => typeof value === 'string' || Buffer.isBuffer(value) || 'PEM text (a string or a Buffer)',
}

/** MiB of sessions the read cache keeps: ~13,000 sessions of ~0.5 KB (see src/cache.rs). */
const DEFAULT_CACHE_MIB = 8

const STORE_OPTIONS = {
  tableName: check.tableName,
  wal: check.boolean,
  databaseOptions: check.databaseOptions,
  ttl: check.ttl,
  touchAfter: check.nonNegativeSeconds,
  disableTouch: check.boolean,
  maxLifetime: check.positiveSeconds,
  maxSessionBytes: check.positiveInteger,
  userKey: check.function,
  synchronous: check.synchronous,
  pruneInterval: check.pruneInterval,
  createTable: check.boolean,
  extraColumns: check.extraColumns,
  extendDefaultFields: check.function,
  importFrom: check.importFrom,
  // The names connect-session-knex and connect-session-sequelize users know.
  createtable: check.boolean,
  clearInterval: check.intervalMs, // connect-session-knex before v5
  cleanupInterval: check.intervalMsOrOff, // connect-session-knex v5
  checkExpirationInterval: check.intervalMsOrOff,
  expiration: check.milliseconds,
}

/** An alias and our own name for one option: at most one of them. */
function alias(options, ours, theirs, convert) {
  if (options[theirs] === undefined) return options[ours]
  if (options[ours] !== undefined) {
    throw typeError(`storeOptions: give ${ours} or its alias ${theirs}, not both`)
  }
  return convert(options[theirs])
}

const msToSeconds = (ms) => (ms === false || ms <= 0 ? false : ms / 1000)

/** The other stores' names for pruneInterval, all in milliseconds. */
const PRUNE_INTERVAL_ALIASES = ['clearInterval', 'cleanupInterval', 'checkExpirationInterval']

/** Checks a snapshot against a table of rules; throws a TypeError naming what is wrong. */
function validate(options, rules, what) {
  for (const name of Object.keys(options)) {
    // Own rules only: a name like "constructor" or "hasOwnProperty" is just unknown.
    if (!Object.hasOwn(rules, name)) throw typeError(`${what}: unknown option "${name}"`)
    const value = options[name]
    if (value === undefined) continue
    const verdict = rules[name](value)
    if (verdict !== true) throw typeError(`${what}.${name} must be ${verdict}`)
  }
  return options
}

/** 1 MiB: far above any real session (express-session's own are well under 4 KB). */
const DEFAULT_MAX_SESSION_BYTES = 1024 * 1024

function databaseOptions(input) {
  const options = validate(snapshot(input, 'databaseOptions'), DATABASE_OPTIONS, 'databaseOptions')
  return {
    __proto__: null,
    readonly: options.readonly ?? false,
    fileMustExist: options.fileMustExist ?? false,
    timeout: options.timeout ?? 5000,
    wal: options.wal ?? true,
    synchronous: options.synchronous,
    cacheSize: options.cacheSize ?? DEFAULT_CACHE_MIB,
    consistency: options.consistency ?? 'weak',
    username: options.username,
    password: options.password,
    ca: options.ca === undefined ? undefined : String(options.ca),
  }
}

/** Every field own, so that the native side reading it never reaches a prototype. */
function importSource(importFrom) {
  if (typeof importFrom === 'string') return { __proto__: null, store: importFrom, table: undefined, sidColumn: undefined }
  return { __proto__: null, store: importFrom.store, table: importFrom.table, sidColumn: importFrom.sidColumn }
}

/** Store options whose value can be an object: read once into a snapshot of their own. */
const OBJECT_OPTIONS = ['databaseOptions', 'extraColumns', 'importFrom']

function storeOptions(input) {
  const options = snapshot(input, 'storeOptions')
  for (const name of OBJECT_OPTIONS) {
    const value = options[name]
    if (typeof value === 'object' && value !== null) options[name] = snapshot(value, `storeOptions.${name}`)
  }
  validate(options, STORE_OPTIONS, 'storeOptions')
  options.createTable = alias(options, 'createTable', 'createtable', (v) => v)
  const intervals = PRUNE_INTERVAL_ALIASES.filter((name) => options[name] !== undefined)
  if (intervals.length > 1) throw typeError(`storeOptions: give ${intervals[0]} or ${intervals[1]}, not both`)
  for (const name of intervals) options.pruneInterval = alias(options, 'pruneInterval', name, msToSeconds)
  options.ttl = alias(options, 'ttl', 'expiration', msToSeconds)
  if (options.extendDefaultFields !== undefined && options.extraColumns === undefined) {
    throw typeError('storeOptions: extendDefaultFields needs extraColumns to declare its columns')
  }
  return {
    __proto__: null,
    tableName: options.tableName ?? 'Sessions',
    wal: options.wal ?? true,
    databaseOptions: options.databaseOptions,
    ttl: options.ttl ?? 86400,
    touchAfter: options.touchAfter ?? 0,
    disableTouch: options.disableTouch ?? false,
    maxLifetime: options.maxLifetime,
    maxSessionBytes: options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES,
    userKey: options.userKey,
    synchronous: options.synchronous,
    pruneInterval: options.pruneInterval ?? 900,
    createTable: options.createTable ?? true,
    extraColumns: options.extraColumns ?? Object.create(null),
    extendDefaultFields: options.extendDefaultFields,
    importFrom: options.importFrom === undefined ? null : importSource(options.importFrom),
  }
}

module.exports = { databaseOptions, storeOptions, snapshot, validate, isPlainObject, typeError, LONE_SURROGATE, DEFAULT_MAX_SESSION_BYTES }
