'use strict'

// "Log out everywhere" and "log out other devices" with passport-style sessions
// (passport keeps the user id in req.session.passport.user). The store indexes each
// session by that id through the userKey option.

const express = require('express')
const session = require('express-session')
const { SQLiteStore } = require('..')

function createStore(database) {
  return new SQLiteStore(database, { userKey: (s) => s.passport?.user })
}

function createApp(store) {
  const app = express()
  app.use(session({ store, secret: 'change me', resave: false, saveUninitialized: false }))
  app.get('/login', (req, res, next) => {
    // What passport's req.login does: a fresh session holding the user id.
    req.session.regenerate((error) => {
      if (error) return next(error)
      req.session.passport = { user: String(req.query.user) }
      res.send(`logged in as ${req.query.user} on this device\n`)
    })
  })
  const requireUser = (req, res, next) => (req.session.passport ? next() : res.status(401).send('not logged in\n'))
  app.get('/me', requireUser, (req, res) => res.json({ user: req.session.passport.user }))
  app.get('/devices', requireUser, async (req, res, next) => {
    try {
      res.json(await store.idsByUser(req.session.passport.user))
    } catch (error) {
      next(error)
    }
  })
  app.post('/logout-everywhere', requireUser, async (req, res, next) => {
    try {
      const ended = await store.destroyByUser(req.session.passport.user)
      res.json({ ended })
    } catch (error) {
      next(error)
    }
  })
  app.post('/logout-other-devices', requireUser, async (req, res, next) => {
    try {
      const ended = await store.destroyByUser(req.session.passport.user, { except: req.sessionID })
      res.json({ ended })
    } catch (error) {
      next(error)
    }
  })
  return app
}

if (require.main === module) {
  const store = createStore(process.env.SESSIONS_DB || 'sessions.db')
  const port = Number(process.env.PORT || 3000)
  createApp(store).listen(port, '127.0.0.1', () => console.log(`http://127.0.0.1:${port}/login?user=ada`))
}

module.exports = { createApp, createStore }
