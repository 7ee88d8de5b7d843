'use strict'

// Child process for one store API or prune scenario (see lib/child.js): receives
// { scenario, store, options } over IPC, runs it on a fresh temp dir, answers
// { ok, result | error } and exits. Exiting explicitly also ends stores' intervals.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { findStore } = require('./stores')
const { apiScenario } = require('./scenarios/api')
const { pruneScenario } = require('./scenarios/prune')

const scenarios = { api: apiScenario, prune: pruneScenario }

// connect-session-knex rejects the promise of a call whose callback already got the
// error (which the scenario records); do not let that end the process.
process.on('unhandledRejection', (error) => console.error(`unhandled rejection in a store: ${error && error.message}`))

process.once('message', async ({ scenario, store, options }) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-bench-'))
  let answer
  try {
    const storeModule = findStore(store)
    if (!storeModule) throw new Error(`unknown store ${store}`)
    answer = { ok: true, result: await scenarios[scenario](storeModule, dir, options) }
  } catch (error) {
    answer = { ok: false, error: (error && error.stack) || String(error) }
  }
  fs.rmSync(dir, { recursive: true, force: true })
  process.send(answer, () => process.exit(0))
})
