'use strict'

// The HTTP benchmark's app, one child process per store (see scenarios/http.js).
// Express 5 + express-session with resave: false and saveUninitialized: false:
//   GET  /read   reads the session; unmodified, so express-session calls store.touch
//   GET  /write  increments a counter in the session, so it is saved on every request
//   POST /login  regenerates the session and puts a user in it
// Without a store ("none") the same routes run with no session middleware: the ceiling.
// Protocol over IPC: receives { store, dir, httpSessions }, answers { port }; on
// "stop" answers with its counters and exits.

const express = require('express')
const session = require('express-session')
const { findStore } = require('./stores')
const { populate } = require('./lib/populate')
const { trackPendingCalls } = require('./lib/pending-calls')
const { userFor, DAY_MS } = require('./lib/session-data')

// Counted here rather than checked by the load generator, which would have to buffer
// every response body: a /read without a session means the store lost or refused one.
const counters = { read: 0, readWithoutSession: 0, write: 0, login: 0, errors: 0, unhandledRejections: 0 }

// connect-session-knex rejects the promise of a call whose callback already got the
// error; count such rejections instead of letting them end the process mid-run.
process.on('unhandledRejection', () => counters.unhandledRejections++)

function buildApp(store) {
  const app = express()
  if (store) {
    app.use(
      session({
        store,
        secret: 'benchmark only, not a secret',
        resave: false,
        saveUninitialized: false,
        cookie: { maxAge: DAY_MS, httpOnly: true, sameSite: 'lax' },
      }),
    )
  }
  app.get('/read', (req, res) => {
    counters.read++
    const user = req.session?.user
    if (store && !user) counters.readWithoutSession++
    res.send(user ? `hello ${user.name}` : 'hello')
  })
  app.get('/write', (req, res) => {
    counters.write++
    if (!req.session) return res.send('0')
    req.session.views = (req.session.views || 0) + 1
    res.send(String(req.session.views))
  })
  app.post('/login', (req, res, next) => {
    counters.login++
    if (!req.session) return res.send('ok')
    req.session.regenerate((error) => {
      if (error) return next(error)
      req.session.user = userFor(counters.login)
      res.send('ok')
    })
  })
  app.use((error, req, res, next) => {
    counters.errors++
    res.status(500).send(String(error && error.message))
  })
  return app
}

process.once('message', async ({ store: storeKey, dir, httpSessions }) => {
  try {
    let handle
    let calls
    if (storeKey) {
      const storeModule = findStore(storeKey)
      handle = await storeModule.create(dir)
      // Other users' sessions, so lookups run against a store of realistic size.
      await populate(handle, httpSessions, { prefix: 'background' })
      calls = trackPendingCalls(handle.store)
    }
    const server = buildApp(handle?.store).listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
    process.on('message', async (message) => {
      if (message !== 'stop') return
      server.close()
      server.closeAllConnections()
      try {
        await calls?.settled()
        await handle?.close()
      } catch (error) {
        counters.closeError = String(error && error.message)
      }
      process.send({ counters }, () => process.exit(0))
    })
  } catch (error) {
    process.send({ error: (error && error.stack) || String(error) }, () => process.exit(1))
  }
})
