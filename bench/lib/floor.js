'use strict'

// The floor (bench/floor.rs): the SQLite work of the store's writes with no Node-API
// and no JavaScript, built with cargo from the repository and run as a process of its
// own per N. What ours costs beyond it is the binding, JSON and this harness.

const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { ROOT_DIR } = require('./versions')

/** Builds the floor; its path, or throws with why it cannot run here. */
function buildFloor() {
  const host = execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
  // The same --target as `npm test`, so the compiled dependencies are shared.
  execFileSync('cargo', ['build', '--release', '--target', host, '--example', 'floor'], { cwd: ROOT_DIR, stdio: 'ignore' })
  return path.join(ROOT_DIR, 'target', host, 'release', 'examples', 'floor')
}

/** One run: { n, phases: { '<phase> c<1|64>': { opsPerSec, p50us, p99us } } }. */
function runFloor(binary, { n, budgetMs }) {
  const out = execFileSync(binary, ['--n', String(n), '--budget', String(budgetMs)], { encoding: 'utf8' })
  return JSON.parse(out)
}

module.exports = { buildFloor, runFloor }
