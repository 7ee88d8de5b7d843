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
  writer.close()
  execFileSync('mount', ['-o', 'remount,ro', dir])
  const store = new SQLiteStore(file, { wal: false })
  assert.equal((await store.get('s')).user, 'ro')
  await assert.rejects(store.set('n', sessionFor('n')), { code: 'SQLITE_READONLY' })
  await assert.rejects(store.destroy('s'), { code: 'SQLITE_READONLY' })
  assert.equal(await store.length(), 1)
  store.close()
})

test('a database file deleted or replaced while open: clear errors, no crash', async () => {
  for (const what of ['deleted', 'replaced']) {
    const file = tempDb()
    const store = new SQLiteStore(file)
    await store.set('s', sessionFor('s'))
    fs.rmSync(file)
    if (what === 'replaced') fs.writeFileSync(file, 'not a database at all')
    await sleep(60) // the check runs at most every 50 ms per connection
    const error = await store.set('t', sessionFor('t')).then(() => null, (e) => e)
    assert.ok(error instanceof Error, what)
    assert.match(error.code, /^SQLITE_(READONLY|IOERR|CANTOPEN|NOTADB|CORRUPT)$/, `${what}: ${error.code}`)
    await store.get('s').catch((e) => assert.match(e.code, /^SQLITE_/))
    store.close()
  }
})

test('a truncated database: opening or reading fails with a code, never a crash', async () => {
  const file = tempDb()
  const writer = new SQLiteStore(file)
  for (let i = 0; i < 200; i++) await writer.set(`s${i}`, { ...sessionFor(i), pad: 'p'.repeat(500) })
  writer.close()
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
  store.close()
})
