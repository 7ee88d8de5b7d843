'use strict'

// The HTTP benchmark for one store (or none): start http-app.js in its own process, log
// a pool of users in, then load each route with autocannon from this process, on
// 127.0.0.1, each request carrying the next cookie of the pool.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const autocannon = require('autocannon')
const { startChild } = require('../lib/child')

const APP = path.join(__dirname, '..', 'http-app.js')
const ROUTES = [
  { name: 'read', method: 'GET', path: '/read', withCookie: true },
  { name: 'write', method: 'GET', path: '/write', withCookie: true },
  // A new visitor logging in each time (no cookie): regenerate + a new session row.
  { name: 'login', method: 'POST', path: '/login', withCookie: false },
]

async function startApp(storeId, dir, options, env) {
  const app = startChild(APP, { env, execArgv: [] })
  app.send({ store: storeId, dir, httpSessions: options.httpSessions })
  const ready = await app.next()
  if (ready.error) {
    app.kill()
    throw new Error(ready.error)
  }
  return { app, base: `http://127.0.0.1:${ready.port}` }
}

/** Logs `count` users in, one after another; their session cookies. */
async function loginPool(base, count) {
  const cookies = []
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${base}/login`, { method: 'POST' })
    await response.text()
    const cookie = response.headers.get('set-cookie')
    if (cookie) cookies.push(cookie.split(';')[0])
  }
  return cookies
}

function load(base, route, cookies, { connections, seconds }) {
  let next = 0
  return autocannon({
    url: base,
    connections,
    duration: seconds,
    requests: [
      {
        method: route.method,
        path: route.path,
        setupRequest(request) {
          if (route.withCookie && cookies.length) request.headers.cookie = cookies[next++ % cookies.length]
          return request
        },
      },
    ],
  })
}

async function httpScenario(storeId, options, env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-bench-http-'))
  const { app, base } = await startApp(storeId, dir, options, env)
  try {
    const cookies = await loginPool(base, options.users)
    const loadOptions = { connections: options.connections, seconds: options.httpSeconds }
    // Unrecorded warm-up (JIT, connection setup) on the read route.
    await load(base, ROUTES[0], cookies, { ...loadOptions, seconds: options.warmupSeconds })
    const routes = {}
    for (const route of ROUTES) {
      const r = await load(base, route, cookies, loadOptions)
      routes[route.name] = {
        reqPerSec: Math.round((r.requests.total / r.duration) * 10) / 10,
        p50ms: r.latency.p50,
        p99ms: r.latency.p99,
        requests: r.requests.total,
        errors: r.errors + r.timeouts + r.non2xx,
      }
    }
    app.send('stop')
    const { counters } = await app.next()
    return { users: cookies.length, routes, counters }
  } finally {
    app.kill()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

module.exports = { httpScenario, ROUTES }
