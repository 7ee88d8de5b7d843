// The package loads by its name from CommonJS and from ESM.

import test from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import defaultExport, { SQLiteStore, Database } from 'express-sqlite-native'

test('ESM named and default imports, and require, give the same classes', async () => {
  const require = createRequire(import.meta.url)
  const cjs = require('express-sqlite-native')
  assert.equal(SQLiteStore, cjs.SQLiteStore)
  assert.equal(Database, cjs.Database)
  assert.equal(defaultExport, SQLiteStore)
  const store = new SQLiteStore(':memory:')
  await store.set('a', { cookie: {} })
  assert.deepEqual(await store.ids(), ['a'])
  store.close()
})
