'use strict'

// Everything `npm test` runs after the build: the Rust tests, the JS suite on this
// Node, the type test, then the same JS suite under Node 18, 22 and 24 with the same
// built addon (Node-API: one binary for every Node).

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync, execFileSync } = require('node:child_process')
const { ensureRuntime, runtimeVersion } = require('./runtimes')

const root = path.join(__dirname, '..')
const testFiles = fs
  .readdirSync(path.join(root, '__test__'))
  .filter((name) => /\.test\.(c|m)?js$/.test(name))
  .sort()
  .map((name) => path.join('__test__', name))

function run(title, command, args, env = {}) {
  console.log(`\n# ${title}`)
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  if (result.status !== 0) {
    console.error(`# FAILED: ${title} (exit ${result.status}${result.signal ? `, ${result.signal}` : ''})`)
    process.exit(result.status || 1)
  }
}

const host = execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
// The same --target as the napi build, so the compiled dependencies are shared.
run('cargo test', 'cargo', ['test', '--release', '--target', host])
run(`JS tests on Node ${process.version}`, process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=1', ...testFiles])
run('type test (tsc)', process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '__test__/tsconfig.json'])
for (const name of ['node18', 'node22', 'node24']) {
  const node = ensureRuntime(name)
  run(`JS tests on Node ${runtimeVersion(node)} (same addon binary)`, node, [
    '--test',
    '--test-reporter=tap',
    '--test-concurrency=1',
    ...testFiles,
  ], { ESN_SECONDARY_RUNTIME: '1', ESN_INSPECT_NODE: process.execPath })
}
console.log('\n# all test stages passed')
