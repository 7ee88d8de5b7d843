'use strict'

// Shared test helpers: fresh files, realistic sessions, and an independent view of
// the SQLite file (node:sqlite where the runtime has it, else better-sqlite3).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'esn-test-'))
}

function tempDb(name = 'sessions.db') {
  return path.join(tempDir(), name)
}

/** A session as express-session hands it to a store (cookie serialized as JSON would be). */
function sessionFor(user, maxAgeMs = 60_000) {
  return {
    cookie: { originalMaxAge: maxAgeMs, expires: new Date(Date.now() + maxAgeMs), httpOnly: true, path: '/' },
    user,
  }
}

/** Calls a callback-style method and resolves with its arguments. */
function callback(fn) {
  return new Promise((resolve) => fn((...args) => resolve(args)))
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The Node that runs the inspecting children: the one that installed the dev
 * dependencies (better-sqlite3 is built for its ABI) when the suite runs under another
 * runtime; node:sqlite is used instead wherever it exists.
 */
const inspectNode = () => process.env.ESN_INSPECT_NODE || process.execPath

/**
 * Looks at the file through another SQLite library (node:sqlite where the runtime has
 * it, else better-sqlite3) in a child process. Never in this process: two SQLite
 * libraries in one process do not see each other's POSIX locks, and the other one
 * closing its file would drop our locks and could delete our WAL.
 */
function inspect(file) {
  const { spawnSync } = require('node:child_process')
  const source = `
    const [file, sql, params] = JSON.parse(process.argv[1])
    let db
    try {
      const { DatabaseSync } = require('node:sqlite')
      db = new DatabaseSync(file)
    } catch {
      db = new (require('better-sqlite3'))(file)
    }
    const stmt = db.prepare(sql)
    const reads = /^\\s*(SELECT|PRAGMA|WITH|EXPLAIN)/i.test(sql)
    const out = reads ? stmt.all(...params) : stmt.run(...params)
    db.close()
    process.stdout.write(JSON.stringify(out, (k, v) => (typeof v === 'bigint' ? Number(v) : v)))
  `
  const query = (sql, params) => {
    const result = spawnSync(inspectNode(), ['--no-warnings', '-e', source, JSON.stringify([file, sql, params])], {
      cwd: path.join(__dirname, '..'),
      encoding: 'utf8',
      maxBuffer: 512 * 1024 * 1024,
    })
    if (result.status !== 0) throw new Error(`inspect failed: ${result.error ? result.error.message : result.stderr}`)
    return JSON.parse(result.stdout)
  }
  return {
    all: (sql, ...params) => query(sql, params),
    get: (sql, ...params) => query(sql, params)[0],
    run: (sql, ...params) => query(sql, params),
    close: () => {},
  }
}

/** Runs a Node script in a child process and returns { code, stdout, stderr }. */
function runScript(source, { timeoutMs = 30_000, nodeArgs = [] } = {}) {
  const { spawnSync } = require('node:child_process')
  const result = spawnSync(process.execPath, [...nodeArgs, '-e', source], {
    cwd: path.join(__dirname, '..'),
    encoding: 'utf8',
    timeout: timeoutMs,
  })
  return { code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr }
}

/**
 * Holds the write lock of a database file from another process (locks between two
 * SQLite libraries in one process do not see each other, so it must be a process).
 * Resolves once the lock is held; `release()` commits and ends the process.
 */
function holdWriteLock(file) {
  const { spawn } = require('node:child_process')
  const source = `
    let db
    try {
      db = new (require('node:sqlite').DatabaseSync)(${JSON.stringify(file)}, { timeout: 10000 })
    } catch {
      db = new (require('better-sqlite3'))(${JSON.stringify(file)}, { timeout: 10000 })
    }
    db.exec('BEGIN IMMEDIATE')
    process.stdout.write('locked\\n')
    process.stdin.on('data', () => { db.exec('COMMIT'); db.close(); process.exit(0) })
  `
  const child = spawn(inspectNode(), ['-e', source], { cwd: path.join(__dirname, '..'), stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve({ release: () => (child.stdin.write('go\n'), exited) }))
    child.once('exit', (code) => reject(new Error(`lock holder exited early with ${code}`)))
  })
}

/**
 * better-sqlite3 (needed by express-sqlite and by the handle-sharing tests) is a
 * V8-specific addon compiled for the Node that ran `npm install`; under another Node
 * major it cannot load. Returns the module, or a reason to give t.skip().
 */
function betterSqlite3() {
  try {
    const BetterSqlite3 = require('better-sqlite3')
    new BetterSqlite3(':memory:').close() // the addon itself loads lazily
    return { module: BetterSqlite3 }
  } catch (error) {
    return {
      skip: `better-sqlite3 was built for another Node ABI (NODE_MODULE_VERSION ${process.versions.modules} here): ${error.code || error.message}`,
    }
  }
}

module.exports = { betterSqlite3, holdWriteLock, inspectNode, tempDir, tempDb, sessionFor, callback, sleep, inspect, runScript }
