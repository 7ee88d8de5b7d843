'use strict'

// Faults: a full disk, read-only media, a file deleted, replaced or truncated under
// the store. Clear errors with codes, no crash, no damaged database.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync, spawnSync } = require('node:child_process')
const { SQLiteStore } = require('..')
const { tempDir, tempDb, sessionFor, inspect, sleep } = require('./helpers')

/** A small tmpfs of our own (needs root, as CI and the dev machine have). */
function smallFilesystem(t, size) {
  const dir = tempDir()
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' })
  } catch (error) {
    return null
  }
  t.after(() => spawnSync('umount', [dir]))
  return dir
}

test('disk full: writes fail with SQLITE_FULL, reads keep working, the store recovers, nothing corrupt', (t) => {
  const dir = smallFilesystem(t, '600k')
  if (!dir) return t.skip('mounting a small tmpfs needs root: this machine cannot run the disk-full test')
  fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(200 * 1024))
  const file = path.join(dir, 'sessions.db')
  const result = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'disk-full.js'), file, path.join(dir, 'filler')], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  assert.equal(result.status, 0, `child crashed: ${result.signal} ${result.stderr}`)
  const report = JSON.parse(result.stdout)
  assert.equal(report.failed, undefined)
  assert.ok(report.firstFullAt > 10, `some writes fit first (${report.firstFullAt})`)
  assert.ok(report.codes.every((code) => code === 'SQLITE_FULL'), report.codes.join())
  assert.equal(report.readWhileFull, 1)
  assert.equal(report.afterSpace, -1)
  assert.equal(report.lengthAfter, report.firstFullAt + 1)
  assert.deepEqual(inspect(file).all('PRAGMA integrity_check'), [{ integrity_check: 'ok' }])
})

test('read-only media: reads work, writes fail with SQLITE_READONLY, nothing crashes', async (t) => {
  const dir = smallFilesystem(t, '2m')
  if (!dir) return t.skip('mounting a tmpfs needs root: this machine cannot run the read-only media test')
  const file = path.join(dir, 'sessions.db')
  const writer = new SQLiteStore(file, { wal: false })
  await writer.set('s', sessionFor('ro'))
  await writer.close()
  execFileSync('mount', ['-o', 'remount,ro', dir])
  const store = new SQLiteStore(file, { wal: false })
  assert.equal((await store.get('s')).user, 'ro')
  await assert.rejects(store.set('n', sessionFor('n')), { code: 'SQLITE_READONLY' })
  await assert.rejects(store.destroy('s'), { code: 'SQLITE_READONLY' })
  assert.equal(await store.length(), 1)
  await store.close()
})

/**
 * Runs a Node script as a user that file modes apply to (root ignores them): this user
 * when not root, else uid 65534 through setpriv or runuser. Probes first that the
 * user can run this Node and load the package; returns a runner or a reason to skip.
 */
function unprivilegedNode() {
  const root = path.join(__dirname, '..')
  const probe = `require(${JSON.stringify(root)}); process.stdout.write(JSON.stringify([process.getuid(), process.getgid()]))`
  // The suite's secondary runtimes live under root's home; the main Node may not.
  const nodes = [...new Set([process.execPath, process.env.ESN_INSPECT_NODE].filter(Boolean))]
  if (process.platform !== 'linux') return { skip: 'file-mode tests as another user use setpriv/runuser, which are Linux-only' }
  const switchers = process.getuid() === 0
    ? [['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups']], ['runuser', ['-u', 'nobody', '--']]]
    : [[null, []]]
  const reasons = []
  for (const [command, prefix] of switchers) {
    for (const node of nodes) {
      const spawnAs = (args) =>
        command === null
          ? spawnSync(node, args, { cwd: root, encoding: 'utf8', timeout: 30_000 })
          : spawnSync(command, [...prefix, node, ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 })
      const result = spawnAs(['-e', probe])
      if (result.status === 0) {
        const [uid, gid] = JSON.parse(result.stdout)
        if (uid !== 0) return { uid, gid, spawnAs }
      }
      reasons.push(`${command || 'this user'} + ${node}: ${result.error ? result.error.code : (result.stderr || '').trim().split('\n').pop()}`)
    }
  }
  return { skip: `no way to run the package as a non-root user here (${reasons.join('; ')})` }
}

test('a read-only file or directory, used by a non-root process: reads work, writes fail with SQLITE_READONLY', async (t) => {
  const user = unprivilegedNode()
  if (user.skip) return t.skip(user.skip)
  for (const wal of [true, false]) {
    for (const what of ['file 0444', 'directory 0555']) {
      await t.test(`${what}, ${wal ? 'WAL (the default)' : 'wal: false'}`, async (st) => {
        // Traversable by the other user all the way down: tempDir() makes a 0700 dir.
        const base = tempDir()
        fs.chmodSync(base, 0o755)
        const dir = path.join(base, 'db')
        fs.mkdirSync(dir)
        const file = path.join(dir, 'sessions.db')
        const writer = new SQLiteStore(file, { wal, pruneInterval: false })
        await writer.set('s', sessionFor('ro', 600_000))
        await writer.set('old', { cookie: { expires: new Date(Date.now() + 10) } })
        await writer.close()
        await sleep(20) // 'old' is now expired: work a prune would have to write
        assert.equal(inspect(file).get('PRAGMA journal_mode').journal_mode, wal ? 'wal' : 'delete')
        // The other user owns both, so only the mode under test stands in its way.
        if (process.getuid() === 0) {
          fs.chownSync(dir, user.uid, user.gid)
          fs.chownSync(file, user.uid, user.gid)
        }
        fs.chmodSync(file, what === 'file 0444' ? 0o444 : 0o600)
        fs.chmodSync(dir, what === 'file 0444' ? 0o755 : 0o555)
        st.after(() => fs.chmodSync(dir, 0o755))

        const result = user.spawnAs([path.join(__dirname, 'fixtures', 'readonly-child.js'), file, wal ? 'wal' : 'nowal'])
        assert.equal(result.status, 0, `child crashed: ${result.signal} ${result.stderr}`)
        const report = JSON.parse(result.stdout)
        assert.notEqual(report.uid, 0)
        assert.equal(report.unexpected, undefined)
        if (wal && what === 'directory 0555') {
          // A WAL database cannot even be read without its -wal and -shm files, and
          // SQLite cannot create them in this directory (SQLITE_READONLY_DIRECTORY, with
          // any SQLite library): the store refuses to open, with an Error and a code.
          for (const attempt of [report.open, report.openReadonly]) {
            assert.equal(attempt.isError, true, JSON.stringify(attempt))
            assert.equal(attempt.code, 'SQLITE_READONLY', JSON.stringify(attempt))
            assert.match(attempt.message, /SQLITE_READONLY_DIRECTORY: the directory holding the database cannot be written/)
          }
          assert.deepEqual(fs.readdirSync(dir), ['sessions.db'], 'nothing created')
        } else {
          assert.deepEqual(report.open, { value: 'opened' })
          assert.deepEqual(report.get, { value: 'ro' })
          assert.deepEqual(report.length, { value: 1 })
          for (const name of ['set', 'touch', 'destroy', 'prune']) {
            assert.equal(report[name].isError, true, `${name}: ${JSON.stringify(report[name])}`)
            assert.equal(report[name].code, 'SQLITE_READONLY', `${name}: ${JSON.stringify(report[name])}`)
          }
          assert.deepEqual(report.getAfter, { value: 'ro' }, 'still readable after the failed writes')
          assert.deepEqual(report.close, { value: 'closed' })
        }
        fs.chmodSync(dir, 0o755)
        const rows = inspect(file).all('SELECT id FROM Sessions ORDER BY id').map((r) => r.id)
        assert.deepEqual(rows, ['old', 's'], 'nothing written, nothing deleted')
        assert.deepEqual(inspect(file).all('PRAGMA integrity_check'), [{ integrity_check: 'ok' }])
      })
    }
  }
})

test('a database file deleted or replaced while open: clear errors, no crash', async () => {
  for (const what of ['deleted', 'replaced']) {
    const file = tempDb()
    const store = new SQLiteStore(file)
    await store.set('s', sessionFor('s'))
    fs.rmSync(file)
    if (what === 'replaced') fs.writeFileSync(file, 'not a database at all')
    const error = await store.set('t', sessionFor('t')).then(() => null, (e) => e)
    assert.ok(error instanceof Error, what)
    assert.equal(error.code, 'ERR_DATABASE_MOVED', what)
    await store.get('s').catch((e) => assert.equal(e.code, 'ERR_DATABASE_MOVED'))
    store.close()
  }
})

test('a truncated database: opening or reading fails with a code, never a crash', async () => {
  const file = tempDb()
  const writer = new SQLiteStore(file)
  for (let i = 0; i < 200; i++) await writer.set(`s${i}`, { ...sessionFor(i), pad: 'p'.repeat(500) })
  await writer.close()
  fs.truncateSync(file, Math.floor(fs.statSync(file).size / 3))
  let store
  try {
    store = new SQLiteStore(file)
  } catch (error) {
    return assert.match(error.code, /^SQLITE_(CORRUPT|NOTADB)$/)
  }
  const codes = []
  for (const sid of ['s1', 's100', 's199']) await store.get(sid).catch((e) => codes.push(e.code))
  await store.all().catch((e) => codes.push(e.code))
  assert.ok(codes.length > 0 && codes.every((c) => c === 'SQLITE_CORRUPT'), codes.join())
  await store.close()
})

test('opening on a full disk: SQLITE_FULL naming the cause, and nothing left behind', async (t) => {
  const dir = smallFilesystem(t, '1m')
  if (!dir) return t.skip('mounting a small tmpfs needs root: this machine cannot run the disk-full test')
  const file = path.join(dir, 'app', 'sessions.db')
  const writer = new SQLiteStore(file, { pruneInterval: false })
  await writer.set('kept', sessionFor('kept'))
  await writer.close()
  assert.throws(() => fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(2 * 1024 * 1024)), { code: 'ENOSPC' })

  // An existing database: its -wal and -shm cannot be set up.
  assert.throws(() => new SQLiteStore(file, { pruneInterval: false }), (error) => {
    assert.equal(error.code, 'SQLITE_FULL')
    assert.match(error.message, /No space left on device/)
    return true
  })
  // Only the database and the companions SQLite made for it: those of an existing
  // database are left (another process may be using them).
  const left = fs.readdirSync(path.dirname(file)).filter((f) => !['sessions.db', 'sessions.db-wal', 'sessions.db-shm'].includes(f))
  assert.deepEqual(left, [], 'nothing else left behind')
  // A new one in new directories.
  assert.throws(() => new SQLiteStore(path.join(dir, 'new', 'deeper', 'sessions.db')), { code: 'SQLITE_FULL' })
  assert.deepEqual(fs.readdirSync(dir).sort(), ['app', 'filler'], 'no directory or empty file left behind')

  fs.rmSync(path.join(dir, 'filler'))
  const store = new SQLiteStore(file, { pruneInterval: false })
  assert.equal((await store.get('kept')).user, 'kept')
  await store.close()
})
