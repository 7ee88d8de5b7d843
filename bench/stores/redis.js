'use strict'

// connect-redis against a redis-server this benchmark starts on 127.0.0.1 (and stops).
// Skipped, with the reason recorded, when no redis-server is installed.

const { spawn, execFileSync } = require('node:child_process')
const net = require('node:net')

let server

function freePort() {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

async function startServer() {
  if (server) return server
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  process.on('exit', () => child.kill())
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.end(), resolve(true)))
      socket.on('error', () => resolve(false))
    })
    if (ok) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  server = { port, child }
  return server
}

module.exports = {
  name: 'connect-redis',
  durable: false,
  sqlite: false,
  version: () => require('connect-redis/package.json').version,
  available() {
    try {
      execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
      return true
    } catch {
      return 'redis-server is not installed (apt-get install redis-server)'
    }
  },
  async create() {
    const { port } = await startServer()
    const { createClient } = require('redis')
    const { RedisStore } = require('connect-redis')
    const client = createClient({ url: `redis://127.0.0.1:${port}` })
    await client.connect()
    await client.flushAll()
    const store = new RedisStore({ client, prefix: 'sess:' })
    return { store, close: () => client.quit(), files: [] }
  },
  stopServer() {
    if (server) server.child.kill()
    server = undefined
  },
}
