'use strict'

// Ours again, from another checkout: the same-run A/B of two builds (a change against
// the commit before it). Runs only when ESN_BASELINE_DIR names a checkout whose addon is
// built (npm run build there); it never competes as a peer.
//
//   ESN_BASELINE_DIR=/path/to/old/checkout node run.js --stores=native,native-baseline

const path = require('node:path')
const ours = require('./express-sqlite-native')
const { checkoutRevision } = require('../lib/versions')

const dir = process.env.ESN_BASELINE_DIR

module.exports = {
  ...ours,
  id: 'native-baseline',
  name: 'express-sqlite-native (baseline)',
  ours: false,
  sqlite: false,
  version: dir ? `${require(path.join(dir, 'package.json')).version} at ${checkoutRevision(dir) ?? dir}` : 'none',
  setup: "the same, from ESN_BASELINE_DIR's build",
  available() {
    if (!dir) return 'ESN_BASELINE_DIR is not set (a checkout of another commit, built, to compare against)'
    try {
      require(dir)
      return true
    } catch (error) {
      return `the baseline addon does not load (${error.message.split('\n')[0]}); run npm run build in ${dir}`
    }
  },
  create(tmp) {
    const { SQLiteStore } = require(dir)
    const file = path.join(tmp, 'sessions.db')
    const store = new SQLiteStore(file, { wal: true })
    return {
      store,
      files: [file],
      close: () => new Promise((resolve, reject) => store.close((error) => (error ? reject(error) : resolve()))),
      prune: () => new Promise((resolve, reject) => store.prune((error, n) => (error ? reject(error) : resolve(n)))),
    }
  },
}
