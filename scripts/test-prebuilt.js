'use strict'

// The JS test suite and the type test against the binary that is already here (a
// release build downloaded by CI, or an earlier `npm run build`): no cargo, no napi
// build. The release workflow runs it on every OS and Node version it publishes for.
//
//   node scripts/test-prebuilt.js [--skip <name>]...     e.g. --skip 12-runtimes
//
// Under ESN_SECONDARY_RUNTIME=1 (a Node other than the one that installed the dev
// dependencies, as in scripts/test-all.js) the tests that run once are skipped by
// the tests themselves, and ESN_INSPECT_NODE names the Node that can load better-sqlite3.

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const argv = process.argv.slice(2)
const skip = new Map()
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--skip' && argv[i + 1]) skip.set(argv[++i], 'asked on the command line')
}
// 13-package drives npm through execFileSync('npm') and a POSIX PATH; not on Windows yet.
if (process.platform === 'win32' && !skip.has('13-package')) skip.set('13-package', 'POSIX-only (npm spawned without a shell)')

function run(title, command, args, env = {}) {
  console.log(`\n# ${title}`)
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  if (result.status !== 0) {
    console.error(`# FAILED: ${title} (exit ${result.status}${result.signal ? `, ${result.signal}` : ''})`)
    process.exit(result.status || 1)
  }
}

// Which binary the loader picks, before anything else: a clear failure if there is none.
run('binary', process.execPath, [
  '-e',
  `require('./binding.js');
   const file = Object.keys(require.cache).find((f) => f.endsWith('.node'));
   console.log('loaded ' + file + ' on Node ' + process.version + ' ' + process.platform + '-' + process.arch);`,
])

const files = fs
  .readdirSync(path.join(root, '__test__'))
  .filter((name) => /\.test\.(c|m)?js$/.test(name))
  .sort()
  .filter((name) => {
    const stem = name.replace(/\.test\.(c|m)?js$/, '')
    const reason = skip.get(stem) || skip.get(name)
    if (reason) console.log(`# skipping ${name}: ${reason}`)
    return !reason
  })
  .map((name) => path.join('__test__', name))

run(`JS tests on Node ${process.version}`, process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=1', ...files])

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
if (fs.existsSync(tsc)) run('type test (tsc)', process.execPath, [tsc, '-p', path.join('__test__', 'tsconfig.json')])
console.log('\n# all test stages passed')
