'use strict'

// Counts a store's calls still waiting for their callback, so the HTTP app can close the
// store only once requests that were already being handled when the load stopped have
// finished with it (closing knex under them aborts its queued queries, for instance).
// express-session chains a request's store calls inside their callbacks, so the count
// never drops to zero in the middle of a request.

const WRAPPED = ['get', 'set', 'touch', 'destroy']

function trackPendingCalls(store) {
  let pending = 0
  for (const method of WRAPPED) {
    const original = store[method]
    if (typeof original !== 'function') continue
    store[method] = function tracked(...args) {
      const callback = args.at(-1)
      if (typeof callback !== 'function') return original.apply(this, args)
      pending++
      args[args.length - 1] = (...results) => {
        pending--
        callback(...results)
      }
      return original.apply(this, args)
    }
  }
  return {
    /** Resolves when no call is waiting (polled; the caller has stopped new requests). */
    async settled() {
      while (pending > 0) await new Promise((resolve) => setTimeout(resolve, 10))
    },
  }
}

module.exports = { trackPendingCalls }
