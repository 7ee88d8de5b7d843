'use strict'

// `npm run bench`: the whole benchmark under this Node, then again under Node 24 (the
// active LTS, which has node:sqlite), then results/summary.md and summary.svg with one
// column per Node. Node 24 comes from the npm registry (scripts/runtimes.js, a cache
// folder outside the repo); the native peers get their own install built for it there,
// since better-sqlite3 and sqlite3 are built for one Node ABI.
//
//   node all.js [run.js flags]               e.g. --quick, --rounds=5, --stores=...
//   node all.js --runtimes=host [flags]      only this Node
//   node all.js --summary-only               re-render the summary from saved runs

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { ensureRuntime, runtimeVersion, npmSync } = require('../scripts/runtimes')
const { writeSummary } = require('./report/combined')

const BENCH_DIR = __dirname
const RESULTS = path.join(BENCH_DIR, 'results')

function run(title, command, args, env = {}) {
  console.log(`\n# ${title}`)
  const result = spawnSync(command, args, { cwd: BENCH_DIR, stdio: 'inherit', env: { ...process.env, ...env } })
  if (result.status !== 0) throw new Error(`${title} failed (exit ${result.status ?? result.signal})`)
}

/** Headers to build native addons against: the node package ships the full tarball. */
function nodeHeadersDir(executable) {
  const packageDir = path.dirname(path.dirname(executable))
  const platformPackages = path.join(packageDir, 'node_modules')
  for (const name of fs.existsSync(platformPackages) ? fs.readdirSync(platformPackages) : []) {
    const dir = path.join(platformPackages, name)
    if (fs.existsSync(path.join(dir, 'include', 'node', 'node_version.h'))) return dir
  }
  throw new Error(`no Node headers found next to ${executable}`)
}

/**
 * Versions that differ under another Node. better-sqlite3 12 (what express-sqlite's
 * `^12` resolves to) aborts Node 24 when the GC finalizes a statement ("Assertion
 * failed: (env) != nullptr" in RemoveEnvironmentCleanupHook, an upstream issue closed
 * without a fix in 12.x); 13 is built on Node-API and works. So on Node 24 every peer
 * gets 13, as a Node 24 user would have to force it, and the results record it.
 */
const OVERRIDES = { node24: { 'better-sqlite3': '^13.2.0' } }

/** bench's dependencies built for another Node, in the cache; reinstalled when they change. */
function depsFor(name, executable) {
  const dir = path.join(os.homedir(), '.cache', 'express-sqlite-native', `bench-deps-${name}`)
  const manifest = JSON.parse(fs.readFileSync(path.join(BENCH_DIR, 'package.json'), 'utf8'))
  const overrides = OVERRIDES[name] ?? {}
  for (const [dependency, version] of Object.entries(overrides)) {
    if (manifest.dependencies[dependency]) manifest.dependencies[dependency] = version
  }
  manifest.overrides = { ...manifest.overrides, ...overrides }
  const wanted = JSON.stringify({ manifest, lock: fs.readFileSync(path.join(BENCH_DIR, 'package-lock.json'), 'utf8') })
  const stamp = path.join(dir, 'installed-from.json')
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === wanted) return path.join(dir, 'node_modules')
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  if (!Object.keys(overrides).length) fs.copyFileSync(path.join(BENCH_DIR, 'package-lock.json'), path.join(dir, 'package-lock.json'))
  console.log(`\n# installing the bench's dependencies for ${name} (native peers compile: a minute or two)`)
  // npm runs under that Node (first on PATH), so node-gyp builds for its ABI, against
  // the headers its package carries (nothing is downloaded from outside the registry).
  npmSync(['install', '--no-audit', '--no-fund'], {
    cwd: dir,
    stdio: 'inherit',
    env: {
      ...process.env,
      PATH: `${path.dirname(executable)}${path.delimiter}${process.env.PATH}`,
      npm_config_nodedir: nodeHeadersDir(executable),
    },
  })
  fs.writeFileSync(stamp, wanted)
  return path.join(dir, 'node_modules')
}

function main() {
  const args = process.argv.slice(2)
  const own = (name) => args.find((a) => a.startsWith(`--${name}`))
  const runtimes = (own('runtimes')?.split('=')[1] ?? 'host,node24').split(',')
  const passThrough = args.filter((a) => !a.startsWith('--runtimes') && a !== '--summary-only')
  const hostMajor = process.versions.node.split('.')[0]

  if (!own('summary-only')) {
    if (runtimes.includes('host')) {
      run(`benchmark on Node ${process.version}`, process.execPath, ['--expose-gc', 'run.js', ...passThrough])
    }
    for (const name of runtimes.filter((r) => r !== 'host')) {
      if (name === `node${hostMajor}` && runtimes.includes('host')) continue
      const executable = ensureRuntime(name)
      const modules = depsFor(name, executable)
      run(`benchmark on Node ${runtimeVersion(executable)}`, executable, ['--expose-gc', 'run.js', ...passThrough], {
        BENCH_NODE_MODULES: modules,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(BENCH_DIR, 'lib', 'deps-dir.js')}`.trim(),
      })
    }
  }
  const written = writeSummary(RESULTS, { quick: passThrough.includes('--quick') })
  console.log(`\nwrote\n  ${written.join('\n  ')}`)
}

try {
  main()
} catch (error) {
  console.error(error.message)
  process.exit(1)
}
