'use strict'

// The HTTP benchmark's app, one process per store: express-session (resave: false,
// saveUninitialized: false) with routes that read the session, write it on every
// request, and log in. `node http-app.js <store name | none> <dir>` prints its port.

const express = require('express')
const session = require('express-session')
const { stores } = require('./stores')

async function main() {
  const [name, dir] = process.argv.slice(2)
  const app = express()
  let handle
  if (name !== 'none') {
    handle = await stores.find((s) => s.name === name).create(dir)
    app.use(session({ store: handle.store, secret: 'bench secret', resave: false, saveUninitialized: false }))
  }
  app.get('/login', (req, res, next) => {
    if (!req.session) return res.send('ok')
    req.session.regenerate((error) => {
      if (error) return next(error)
      req.session.user = { id: Math.floor(Math.random() * 1e6), name: 'bench user', roles: ['reader'] }
      res.send('ok')
    })
  })
  app.get('/read', (req, res) => res.send(req.session?.user ? req.session.user.name : 'anonymous'))
  app.get('/write', (req, res) => {
    if (req.session) req.session.counter = (req.session.counter || 0) + 1
    res.send(String(req.session?.counter ?? 0))
  })
  const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`port ${server.address().port}\n`))
  process.on('SIGTERM', () => server.close(async () => {
    await handle?.close()
    process.exit(0)
  }))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
