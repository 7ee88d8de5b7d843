'use strict'

// What the probes share: --name=value flags, and the store under test (ours from the
// repository root or --root, or express-session's MemoryStore with --store=memory).

const path = require('node:path')
const { ROOT_DIR } = require('../lib/versions')

function flags() {
  const out = {}
  for (const arg of process.argv.slice(2)) {
    const [name, ...rest] = arg.replace(/^--/, '').split('=')
    const value = rest.join('=')
    out[name] = rest.length === 0 ? true : value === '' || Number.isNaN(Number(value)) ? value : Number(value)
  }
  return out
}

function openStore(dir) {
  const { store: kind = 'native', root: given } = flags()
  const root = given || ROOT_DIR
  if (kind === 'memory') {
    const { MemoryStore } = require(require.resolve('express-session', { paths: [root] }))
    return { store: new MemoryStore(), close: async () => {}, label: 'MemoryStore' }
  }
  const { SQLiteStore } = require(path.resolve(root))
  const store = new SQLiteStore(path.join(dir, 'sessions.db'), { wal: true })
  return { store, close: () => new Promise((resolve) => store.close(resolve)), label: 'ours' }
}

module.exports = { flags, openStore }
