'use strict'

// Other JavaScript runtimes for the tests (Node 22 and 24, Bun, Deno), installed from
// the npm registry into a cache folder outside the package, once. They are never
// dependencies of the package.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const RUNTIMES = {
  node18: { spec: 'node@18', bin: 'node' },
  node22: { spec: 'node@22', bin: 'node' },
  node24: { spec: 'node@24', bin: 'node' },
  bun: { spec: 'bun@1', bin: 'bun' },
  deno: { spec: 'deno@2', bin: 'deno' },
}

const cacheDir = () =>
  process.env.ESN_RUNTIMES_DIR || path.join(os.homedir(), '.cache', 'express-sqlite-native', 'runtimes')

/** The path of a runtime's executable, installing it first if needed. */
function ensureRuntime(name) {
  const runtime = RUNTIMES[name]
  if (!runtime) throw new Error(`unknown runtime ${name}`)
  const prefix = path.join(cacheDir(), name)
  const bin = path.join(prefix, 'node_modules', '.bin', runtime.bin)
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(prefix, { recursive: true })
    // The runtime packages fetch their platform binary from the registry in an install script.
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', prefix, runtime.spec], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, npm_config_loglevel: 'error' },
    })
  }
  execFileSync(bin, ['--version'], { stdio: 'ignore' }) // fails loudly if it cannot run here
  return bin
}

function runtimeVersion(bin) {
  return execFileSync(bin, ['--version'], { encoding: 'utf8' }).split('\n')[0].trim()
}

module.exports = { ensureRuntime, runtimeVersion, RUNTIMES }
