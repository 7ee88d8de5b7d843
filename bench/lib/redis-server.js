'use strict'

// A throwaway redis-server for connect-redis: 127.0.0.1 only, a random free port, no
// persistence, its files in a temp dir; started by run.js and stopped when it exits.

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

/** redis-server's version, or null when it is not installed. */
function redisServerVersion() {
  try {
    const out = execFileSync('redis-server', ['--version'], { encoding: 'utf8' })
    return out.match(/v=(\S+)/)?.[1] ?? out.trim()
  } catch {
    return null
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.on('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

function answersPing(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.setTimeout(500)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (data) => {
      socket.destroy()
      resolve(data.toString().startsWith('+PONG'))
    })
    socket.on('error', () => resolve(false))
    socket.on('timeout', () => (socket.destroy(), resolve(false)))
  })
}

async function startRedisServer() {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-bench-redis-'))
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  )
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM')
    fs.rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', stop)
  // Polling, not a timed assertion: give up after ~10 s if it never answers.
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break
    if (await answersPing(port)) return { url: `redis://127.0.0.1:${port}`, port, stop }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  stop()
  throw new Error('redis-server did not start')
}

module.exports = { startRedisServer, redisServerVersion }
