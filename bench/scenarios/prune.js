'use strict'

// A prune of many expired sessions, in a fresh worker process: how long the store's own
// cleanup takes and how much it delays the event loop (a synchronous DELETE of 100,000
// rows stalls every request of the process meanwhile; a background one should not).

const { startLoopDelay } = require('../lib/loop-delay')
const { invoke } = require('../lib/invoke')
const { populate } = require('../lib/populate')

const LIFETIME_MS = 500
// Two stores compare expiry with SQLite's datetime(), which has whole seconds: wait a
// bit more than a second past the last expiry so every row is expired for all of them.
const GRACE_MS = 1_200
const LIVE = 100

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function pruneScenario(storeModule, dir, { pruneN }) {
  const handle = await storeModule.create(dir)
  try {
    if (!handle.prune) return { skipped: handle.noPrune || storeModule.noPrune || 'no cleanup function' }
    // Each session expires LIFETIME_MS after its own set (the cookie is built per call),
    // so none is expired when it is written (ours deletes instead of writing those).
    const populated = await populate(handle, pruneN, { prefix: 'expiring', lifetimeMs: LIFETIME_MS })
    await sleep(LIFETIME_MS + GRACE_MS)
    // A few live sessions that must survive the prune.
    await populate(handle, LIVE, { prefix: 'live' })

    const delay = await startLoopDelay()
    const started = performance.now()
    const deleted = await handle.prune()
    const ms = performance.now() - started
    // Let the monitor sample the loop once more after a synchronous prune.
    await sleep(20)
    const loopDelay = delay.stop()
    const remaining = await invoke(handle.store, 'length')
    return {
      n: pruneN,
      populateSeconds: populated.seconds,
      ms: Math.round(ms * 10) / 10,
      deleted: typeof deleted === 'number' ? deleted : undefined,
      remaining,
      expectedRemaining: LIVE,
      loopDelay,
    }
  } finally {
    await handle.close()
  }
}

module.exports = { pruneScenario }
