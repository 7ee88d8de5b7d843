'use strict'

// A minimal Express app whose sessions live in SQLite: `npm start`, then open
// http://127.0.0.1:3000/login?name=ada, /, and /logout.

const express = require('express')
const session = require('express-session')
const { SQLiteStore } = require('..')

function createApp(store, { secret = 'change me', maxAgeMs = 24 * 60 * 60 * 1000 } = {}) {
  const app = express()
  app.use(
    session({
      store,
      secret,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: maxAgeMs, httpOnly: true, sameSite: 'lax' },
    }),
  )
  app.get('/login', (req, res) => {
    const name = String(req.query.name || 'guest')
    req.session.regenerate((error) => {
      if (error) return res.status(500).send('session error')
      req.session.user = { name }
      res.send(`logged in as ${name}\n`)
    })
  })
  app.get('/', (req, res) => {
    if (!req.session.user) return res.status(401).send('not logged in\n')
    req.session.visits = (req.session.visits || 0) + 1
    res.send(`hello ${req.session.user.name}, visit ${req.session.visits}\n`)
  })
  app.get('/me', (req, res) => {
    if (!req.session.user) return res.status(401).json(null)
    res.json(req.session.user)
  })
  app.get('/logout', (req, res) => {
    req.session.destroy(() => res.send('logged out\n'))
  })
  return app
}

if (require.main === module) {
  const file = process.env.SESSIONS_DB || 'sessions.db'
  const port = Number(process.env.PORT || 3000)
  const store = new SQLiteStore(file)
  const server = createApp(store).listen(port, '127.0.0.1', () => {
    console.log(`sessions in ${file}; try http://127.0.0.1:${port}/login?name=ada`)
  })
  const stop = () => server.close(() => store.close())
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

module.exports = { createApp }
