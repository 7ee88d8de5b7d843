'use strict'

// The same addon under Bun and Deno: the example Express app, started by each, logs a
// user in and reads the session over real HTTP; the file it wrote is then read here,
// under Node. Runtimes come from the npm registry into a cache outside the package.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { SQLiteStore } = require('..')
const { ensureRuntime, runtimeVersion } = require('../scripts/runtimes')
const { tempDb } = require('./helpers')

const app = path.join(__dirname, 'fixtures', 'runtime-app.mjs')

const ARGS = {
  bun: (file) => [app, file],
  // A local node_modules, as a Deno user of npm packages has; -A grants FFI for the addon.
  deno: (file) => ['run', '-A', '--node-modules-dir=manual', app, file],
}

async function serveWith(runtime, file) {
  const bin = ensureRuntime(runtime)
  const child = spawn(bin, ARGS[runtime](file), { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  child.stderr.on('data', (chunk) => (err += chunk))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const port = await new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const match = out.match(/port (\d+)/)
      if (match) {
        clearInterval(timer)
        resolve(Number(match[1]))
      }
    }, 20)
    exited.then((status) => {
      clearInterval(timer)
      reject(new Error(`${runtime} exited before listening (${JSON.stringify(status)}): ${err}`))
    })
    setTimeout(() => {
      clearInterval(timer)
      reject(new Error(`${runtime} did not start within 60 s: ${err}`))
    }, 60_000)
  })
  return { port, version: runtimeVersion(bin), stop: () => (child.kill('SIGTERM'), exited) }
}

for (const runtime of ['bun', 'deno']) {
  test(`${runtime}: express-session with this store logs in and reads the session; Node reads the file`, { skip: process.env.ESN_SECONDARY_RUNTIME ? 'run once, under the primary Node' : false }, async (t) => {
    const file = tempDb()
    const server = await serveWith(runtime, file)
    t.diagnostic(`${runtime} ${server.version}`)
    const base = `http://127.0.0.1:${server.port}`
    const login = await fetch(`${base}/login?name=${runtime}-user`)
    assert.equal(login.status, 200)
    const cookie = login.headers.get('set-cookie').split(';')[0]
    const me = await fetch(`${base}/me`, { headers: { cookie } })
    assert.equal(me.status, 200)
    assert.deepEqual(await me.json(), { name: `${runtime}-user` })
    await server.stop()

    const store = new SQLiteStore(file)
    const sessions = await store.all()
    assert.equal(sessions.length, 1)
    assert.deepEqual(sessions[0].user, { name: `${runtime}-user` })
    store.close()
  })
}
