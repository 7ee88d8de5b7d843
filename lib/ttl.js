'use strict'

// When a session expires, in one place for set and touch alike: the cookie's `expires`
// (a Date, or the ISO string a stored cookie holds), else its `maxAge` (ms from now),
// else the store's `ttl` (seconds, or a function of the session returning seconds).

const { storeError } = require('./errors')

function expiryTime(session, now, ttl) {
  const cookie = session.cookie
  if (cookie !== null && typeof cookie === 'object') {
    if (cookie.expires != null && cookie.expires !== false) {
      const at = new Date(cookie.expires).getTime()
      if (!Number.isNaN(at)) return at
    }
    if (typeof cookie.maxAge === 'number' && Number.isFinite(cookie.maxAge)) return now + cookie.maxAge
  }
  const seconds = typeof ttl === 'function' ? ttl(session) : ttl
  if (typeof seconds !== 'number' || Number.isNaN(seconds)) {
    throw storeError('ERR_INVALID_TTL', 'the ttl function must return a number of seconds', TypeError)
  }
  return now + seconds * 1000
}

/** Clamps to what SQLite's 64-bit integers and JS numbers both hold exactly. */
function expiryMs(session, now, ttl) {
  const at = Math.floor(expiryTime(session, now, ttl))
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, at))
}

module.exports = { expiryMs }
