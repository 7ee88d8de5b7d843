'use strict'

// Fills a store through its own set(), 64 calls in flight. Stores that fsync every
// commit (rollback journal, synchronous=FULL) would need minutes for 100,000 sessions,
// so a store module may offer fastWrites(on) to relax durability while populating only;
// the rows are the same, and the measured phases run with the store's own settings.

const { closedLoop } = require('./closed-loop')
const { invoke } = require('./invoke')
const { sessionData, sidFor, DAY_MS } = require('./session-data')

async function populate(handle, count, { prefix = 'sid', lifetimeMs = DAY_MS, concurrency = 64 } = {}) {
  if (count <= 0) return { ops: 0, seconds: 0 }
  await handle.fastWrites?.(true)
  try {
    return await closedLoop((k) => invoke(handle.store, 'set', [sidFor(prefix, k), sessionData(k, lifetimeMs)]), {
      concurrency,
      maxOps: count,
    })
  } finally {
    await handle.fastWrites?.(false)
  }
}

module.exports = { populate }
