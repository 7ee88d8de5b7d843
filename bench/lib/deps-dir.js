'use strict'

// Preloaded (node --require) when the bench runs under a Node other than the one that
// installed bench/node_modules: native peers (better-sqlite3, sqlite3) are built for one
// Node ABI, so all.js installs a second copy for that Node elsewhere and names it in
// BENCH_NODE_MODULES. Bare requires then look there first; nothing else changes.

const Module = require('node:module')

const dir = process.env.BENCH_NODE_MODULES
if (dir) {
  const nodeModulePaths = Module._nodeModulePaths
  Module._nodeModulePaths = function withBenchDeps(from) {
    return [dir, ...nodeModulePaths.call(this, from)]
  }
}
