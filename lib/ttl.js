'use strict'

// When a session expires, in one place for set and touch alike: the cookie's `expires`
// (a Date, or the ISO string a stored cookie holds), else its `maxAge` (ms from now),
// else the store's `ttl` (seconds, or a function of the session returning seconds).
// Nothing a session or a ttl function throws is passed on: its message can be session
// data. Each failure is told by its kind, with a code.

const { storeError } = require('./errors')

const invalidSession = (message) => storeError('ERR_INVALID_SESSION', message, TypeError)
const invalidTtl = (message) => storeError('ERR_INVALID_TTL', message, TypeError)

const unreadableCookie = () =>
  invalidSession('the session cookie cannot be read: a getter, a Proxy trap or the conversion of its expires to a date threw')

/** The cookie's own expiry in epoch ms, or undefined when it sets none. */
function cookieExpiry(session, now) {
  let cookie, expires
  try {
    cookie = session.cookie
    if (cookie === null || typeof cookie !== 'object') return undefined
    expires = cookie.expires
  } catch {
    throw unreadableCookie()
  }
  if (expires != null && expires !== false) {
    // new Date() throws for either, and neither names a moment.
    if (typeof expires === 'symbol' || typeof expires === 'bigint') {
      throw invalidSession("the session cookie's expires is a Symbol or a BigInt, not a date")
    }
    let at
    try {
      at = new Date(expires).getTime()
    } catch {
      throw unreadableCookie()
    }
    if (!Number.isNaN(at)) return at
  }
  let maxAge
  try {
    maxAge = cookie.maxAge
  } catch {
    throw unreadableCookie()
  }
  return typeof maxAge === 'number' && Number.isFinite(maxAge) ? now + maxAge : undefined
}

function expiryTime(session, now, ttl) {
  const at = cookieExpiry(session, now)
  if (at !== undefined) return at
  if (typeof ttl !== 'function') return now + ttl * 1000
  let seconds
  try {
    seconds = ttl(session)
  } catch {
    throw invalidTtl('the ttl function threw')
  }
  if (typeof seconds !== 'number' || Number.isNaN(seconds)) {
    throw invalidTtl('the ttl function must return a number of seconds')
  }
  return now + seconds * 1000
}

/** Clamps to what SQLite's 64-bit integers and JS numbers both hold exactly. */
function expiryMs(session, now, ttl) {
  const at = Math.floor(expiryTime(session, now, ttl))
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, at))
}

module.exports = { expiryMs }
