'use strict'

// What a store is handed in a real app: express-session's Cookie (its toJSON is what
// gets stored) plus application data, about 500 bytes of JSON, under a 32-character
// session id like the ones express-session generates.

const crypto = require('node:crypto')
const { Cookie } = require('express-session')

const DAY_MS = 86_400_000

/** A deterministic, random-looking 32-character sid (real sids are random, so inserts
 * land all over the primary-key index rather than at its end). */
function sidFor(prefix, k) {
  return crypto.createHash('sha256').update(`${prefix}:${k}`).digest('base64url').slice(0, 32)
}

function userFor(k) {
  return {
    id: 100000 + k,
    name: `Bench User ${k}`,
    email: `bench.user.${k}@example.com`,
    roles: ['reader', 'commenter'],
    preferences: { theme: 'dark', language: 'en-GB', timezone: 'Europe/London' },
  }
}

/** A session whose cookie expires `lifetimeMs` from now (computed at call time). */
function sessionData(k, lifetimeMs = DAY_MS) {
  return {
    cookie: new Cookie({ maxAge: lifetimeMs, httpOnly: true, sameSite: 'lax', path: '/' }),
    user: userFor(k),
    csrfSecret: 'Zm9yIGJlbmNobWFya2luZyBvbmx5LCBub3QgYSBzZWNyZXQ',
    cart: [
      { sku: 'SKU-1001', qty: 1, price: 1999 },
      { sku: 'SKU-2002', qty: 3, price: 450 },
    ],
    returnTo: '/account/orders?page=2',
    lastSeen: 1_700_000_000_000 + k,
    flash: {},
  }
}

module.exports = { sidFor, userFor, sessionData, DAY_MS }
