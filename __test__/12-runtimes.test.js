'use strict'

// The same addon under Bun and Deno, loaded as a user's app loads it: an Express app in
// a folder outside the repository, whose node_modules holds express-sqlite-native as npm
// installs it (the files `npm pack` publishes, and this platform's binary package as
// npm/<platform>/ plus the built binary), imports the store by package name, logs a
// user in and reads the session over real HTTP, then closes and exits by itself; the
// file it wrote is then read here, under Node. Runtimes come from the npm registry into
// a cache outside the package (scripts/runtimes.js). A runtime that fails fails its
// test, with the command, exit status and output; only a platform the registry has no
// build of the runtime for is skipped, and the skip says so.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { SQLiteStore } = require('..')
const { ensureRuntime, runtimeVersion, unavailable, npmSync } = require('../scripts/runtimes')
const { tempDb } = require('./helpers')

const root = path.join(__dirname, '..')
const PACKAGE = 'express-sqlite-native'

const ARGS = {
  bun: ['app.mjs'],
  // A local node_modules managed by a package manager, as a Deno user of npm packages
  // has; -A grants what the addon and the server need (FFI, files, network, env).
  deno: ['run', '-A', '--node-modules-dir=manual', 'app.mjs'],
}

function link(target, where) {
  fs.symlinkSync(target, where, process.platform === 'win32' ? 'junction' : 'dir')
}

/** The user's app folder, made once for both runtimes; no network is used. */
let consumer
function makeConsumer() {
  if (consumer) return consumer
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-runtime-app-'))
  const modules = path.join(dir, 'node_modules')
  // The package as npm would install it from its tarball: the files `npm pack` lists.
  const [packed] = JSON.parse(npmSync(['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))
  for (const { path: file } of packed.files) {
    fs.mkdirSync(path.join(modules, PACKAGE, path.dirname(file)), { recursive: true })
    fs.copyFileSync(path.join(root, file), path.join(modules, PACKAGE, file))
  }
  // Its optional dependency for this platform: npm/<platform>/ plus the built binary.
  const binaries = fs.readdirSync(root).filter((f) => /^express-sqlite-native\..+\.node$/.test(f))
  assert.ok(binaries.length > 0, 'a built binary is in the repository root (npm run build)')
  for (const binary of binaries) {
    const platform = binary.replace(/^express-sqlite-native\.|\.node$/g, '')
    const target = path.join(modules, `${PACKAGE}-${platform}`)
    fs.mkdirSync(target)
    fs.copyFileSync(path.join(root, 'npm', platform, 'package.json'), path.join(target, 'package.json'))
    fs.copyFileSync(path.join(root, binary), path.join(target, binary))
  }
  // express and express-session: the repository's installed copies, linked.
  for (const dependency of ['express', 'express-session']) link(path.join(root, 'node_modules', dependency), path.join(modules, dependency))
  const version = (name) => require(path.join(root, 'node_modules', name, 'package.json')).version
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'runtime-consumer',
      private: true,
      type: 'module',
      dependencies: { express: version('express'), 'express-session': version('express-session'), [PACKAGE]: packed.version },
    }),
  )
  fs.copyFileSync(path.join(__dirname, 'fixtures', 'runtime-app.mjs'), path.join(dir, 'app.mjs'))
  consumer = dir
  return dir
}

test.after(() => {
  if (consumer) fs.rmSync(consumer, { recursive: true, force: true })
})

/** Starts the app under the runtime; resolves once it prints its port. */
async function serveWith(runtime, file) {
  const bin = ensureRuntime(runtime)
  const cwd = makeConsumer()
  const args = [...ARGS[runtime], file]
  const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
  const server = { bin, args, out: '', err: '', version: runtimeVersion(bin) }
  server.describe = () =>
    `command: ${bin} ${args.join(' ')} (in ${cwd})\n--- stdout ---\n${server.out}\n--- stderr ---\n${server.err}`
  child.stdout.on('data', (chunk) => (server.out += chunk))
  child.stderr.on('data', (chunk) => (server.err += chunk))
  server.exited = new Promise((resolve) => {
    child.on('error', (error) => resolve({ error: error.message }))
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  server.kill = () => child.kill()
  let timer
  let poll
  try {
    server.port = await new Promise((resolve, reject) => {
      poll = setInterval(() => {
        const match = server.out.match(/^port (\d+)$/m)
        if (match) resolve(Number(match[1]))
      }, 20)
      server.exited.then((status) => reject(new Error(`${runtime} exited before listening (${JSON.stringify(status)})\n${server.describe()}`)))
      timer = setTimeout(() => reject(new Error(`${runtime} did not listen within 60 s\n${server.describe()}`)), 60_000)
    })
  } catch (error) {
    child.kill()
    throw error
  } finally {
    clearInterval(poll)
    clearTimeout(timer)
  }
  return server
}

for (const runtime of ['bun', 'deno']) {
  const skip = process.env.ESN_SECONDARY_RUNTIME
    ? 'run once, under the primary Node'
    : unavailable(runtime) && `not run on this platform: ${unavailable(runtime)}`
  test(`${runtime}: an app importing the store by package name logs in and reads the session; Node reads the file`, { skip }, async (t) => {
    const file = tempDb()
    const server = await serveWith(runtime, file)
    t.diagnostic(`${runtime} ${server.version}`)
    try {
      // The package name resolved to the installed package's ESM entry (exports "import").
      const entry = server.out.match(/^entry (.+)$/m)
      assert.ok(entry, 'the app printed the entry point')
      assert.match(entry[1], /\/node_modules\/express-sqlite-native\/index\.mjs$/)

      const base = `http://127.0.0.1:${server.port}`
      const login = await fetch(`${base}/login?name=${runtime}-user`)
      assert.equal(login.status, 200, await login.text())
      const cookie = login.headers.get('set-cookie').split(';')[0]
      const me = await fetch(`${base}/me`, { headers: { cookie } })
      assert.equal(me.status, 200)
      assert.deepEqual(await me.json(), { name: `${runtime}-user` })

      // The app closes the server and the store; nothing of ours may keep the runtime alive.
      const shutdown = await fetch(`${base}/shutdown`, { method: 'POST' })
      assert.equal(shutdown.status, 200)
      let timer
      const status = await Promise.race([
        server.exited,
        new Promise((resolve) => (timer = setTimeout(() => resolve({ timeout: true }), 15_000))),
      ])
      clearTimeout(timer)
      if (status.timeout) server.kill()
      assert.deepEqual(status, { code: 0, signal: null }, `${runtime} ends by itself, with code 0, once the server and the store are closed`)
      assert.match(server.out, /^store closed$/m)
    } catch (error) {
      server.kill()
      error.message += `\n${server.describe()}`
      throw error
    }

    const store = new SQLiteStore(file)
    const sessions = await store.all()
    assert.equal(sessions.length, 1)
    assert.deepEqual(sessions[0].user, { name: `${runtime}-user` })
    await store.close()
  })
}
