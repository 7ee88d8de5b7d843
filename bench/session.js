'use strict'

// A realistic session: express-session's cookie plus a user object, ~500 bytes of JSON.

function sessionFor(k, maxAgeMs = 24 * 3600 * 1000) {
  return {
    cookie: {
      originalMaxAge: maxAgeMs,
      expires: new Date(Date.now() + maxAgeMs).toISOString(),
      secure: false,
      httpOnly: true,
      path: '/',
      sameSite: 'lax',
    },
    user: {
      id: 100000 + (k % 900000),
      name: `User Number ${k}`,
      email: `user.${k}@example.com`,
      roles: ['reader', 'commenter'],
      preferences: { theme: 'dark', language: 'en-GB', timezone: 'Europe/London' },
    },
    csrfSecret: 'dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IGZvciBjc3Jm',
    cart: [{ sku: 'A-1001', qty: 1 }, { sku: 'B-2002', qty: 3 }],
    lastSeen: 1700000000000 + k,
    flash: {},
  }
}

module.exports = { sessionFor }
