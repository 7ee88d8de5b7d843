'use strict'

// Everything `npm test` runs after the build: cargo fmt --check and clippy, the Rust
// tests, the JS suite on this Node, the type test, then the same JS suite with the same
// built addon (Node-API: one binary for every Node) under each other Node major that is tested: 20, 22 and 24, and 18
// because package.json's engines says >= 18. This Node's own run counts for its major,
// so no major runs twice; the others come from the npm registry (scripts/runtimes.js).
//
//   node scripts/test-all.js            run every stage
//   node scripts/test-all.js --dry-run  print the stages and the Nodes they use, run nothing

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync, execFileSync } = require('node:child_process')
const { ensureRuntime, runtimeVersion } = require('./runtimes')

const NODE_MAJORS = [18, 20, 22, 24]
const dryRun = process.argv.includes('--dry-run')

const root = path.join(__dirname, '..')
const testFiles = fs
  .readdirSync(path.join(root, '__test__'))
  .filter((name) => /\.test\.(c|m)?js$/.test(name))
  .sort()
  .map((name) => path.join('__test__', name))

function run(title, command, args, env = {}) {
  console.log(`\n# ${title}`)
  if (dryRun) {
    const vars = Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')
    console.log(`#   ${vars}${[command, ...args.slice(0, 4)].join(' ')}${args.length > 4 ? ` ... (${args.length} arguments)` : ''}`)
    return
  }
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  if (result.status !== 0) {
    console.error(`# FAILED: ${title} (exit ${result.status}${result.signal ? `, ${result.signal}` : ''}${result.error ? `, ${result.error.message}` : ''})`)
    process.exit(result.status || 1)
  }
}

const hostMajor = Number(process.versions.node.split('.')[0])
const secondary = NODE_MAJORS.filter((major) => major !== hostMajor)
if (dryRun) {
  console.log(`# dry run: Node majors tested: ${NODE_MAJORS.join(', ')}; this Node (${process.version}) runs the suite` +
    `${NODE_MAJORS.includes(hostMajor) ? ` for ${hostMajor}` : ' (a major not in the list, so all four run besides)'};` +
    ` from the registry: ${secondary.map((m) => `node${m}`).join(', ')}`)
}

const host = execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
// Lint first: formatting (rustfmt.toml) and clippy with warnings as errors.
run('cargo fmt --check', 'cargo', ['fmt', '--check'])
run('cargo clippy', 'cargo', ['clippy', '--all-targets', '--target', host, '--', '-D', 'warnings'])
// The same --target as the napi build, so the compiled dependencies are shared.
run('cargo test', 'cargo', ['test', '--release', '--target', host])
run(`JS tests on Node ${process.version}`, process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=1', ...testFiles])
run('type test (tsc)', process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '__test__/tsconfig.json'])
const passed = [process.version]
for (const major of secondary) {
  const node = dryRun ? `<cache>/node${major}/node_modules/node/bin/node` : ensureRuntime(`node${major}`)
  const version = dryRun ? `${major}` : runtimeVersion(node)
  if (!dryRun && !version.startsWith(`v${major}.`)) throw new Error(`node${major} runs as ${version}`)
  run(
    `JS tests on Node ${version} (same addon binary)`,
    node,
    ['--test', '--test-reporter=tap', '--test-concurrency=1', ...testFiles],
    // Tests that run once (packaging, Bun and Deno) skip themselves here; ESN_INSPECT_NODE
    // is the Node that better-sqlite3 was built for, for the tests' inspecting children.
    { ESN_SECONDARY_RUNTIME: '1', ESN_INSPECT_NODE: process.execPath },
  )
  passed.push(version)
}
console.log(`\n# all test stages ${dryRun ? 'listed (dry run: nothing ran)' : `passed; the JS suite under Node ${passed.join(', ')}`}`)
