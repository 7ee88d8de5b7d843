'use strict'

// Versions for the results file: of bench dependencies (as installed in
// bench/node_modules or BENCH_NODE_MODULES, not as declared) and of the checkout being measured.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const BENCH_DIR = path.join(__dirname, '..')
const ROOT_DIR = path.join(BENCH_DIR, '..')

/** The installed version of a bench dependency, or null when it is missing. Read from
 * disk: some packages' "exports" do not expose their package.json to require. */
function packageVersion(name) {
  try {
    const modules = process.env.BENCH_NODE_MODULES || path.join(BENCH_DIR, 'node_modules')
    const file = path.join(modules, name, 'package.json')
    return JSON.parse(fs.readFileSync(file, 'utf8')).version
  } catch {
    return null
  }
}

/** The commit of a checkout (the one under test by default), with "-dirty" for uncommitted
 * changes. bench/results is left out: a run's own output would otherwise mark the next
 * run of the same code dirty. */
function checkoutRevision(dir = ROOT_DIR) {
  try {
    const git = (...args) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim()
    const head = git('rev-parse', '--short', 'HEAD')
    const dirty = git('status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/results').length > 0
    return dirty ? `${head}-dirty` : head
  } catch {
    return null
  }
}

module.exports = { packageVersion, checkoutRevision, BENCH_DIR, ROOT_DIR }
