'use strict'

// The JS test suite and the type test against the binary that is already here (a
// release build downloaded by CI, or an earlier `npm run build`): no cargo, no napi
// build. The release workflow runs it on every OS and Node version it publishes for.
//
//   node scripts/test-prebuilt.js [--skip <name>]...     e.g. --skip 10-crash
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
for (const name of skip.keys()) {
  const known = fs.readdirSync(path.join(root, '__test__')).some((file) => file === name || file.startsWith(`${name}.test.`))
  if (!known) {
    console.error(`# --skip ${name}: no such test file in __test__/`)
    process.exit(1)
  }
}
// Nothing is skipped by platform here. A test that cannot run somewhere says so itself, as
// a skip with its reason (12-runtimes: a runtime the npm registry has no build of for the
// platform, e.g. Deno on musl; 11-faults: mounting needs root on Linux), so what did not
// run is in the report.

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
