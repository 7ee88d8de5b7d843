'use strict'

// Drives http-app.js for one store: logs a pool of users in, then loads each route
// with autocannon (64 connections on 127.0.0.1) and reports req/s and p99 latency.

const path = require('node:path')
const { spawn } = require('node:child_process')
const autocannon = require('autocannon')

const ROUTES = ['read', 'write', 'login']

function startApp(name, dir) {
  const child = spawn(process.execPath, [path.join(__dirname, 'http-app.js'), name, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
      const match = out.match(/port (\d+)/)
      if (match) resolve({ port: Number(match[1]), child })
    })
    child.on('exit', (code) => reject(new Error(`http app for ${name} exited with ${code}`)))
  })
}

async function httpScenarios(name, dir, { durationSec, users = 256 }) {
  const { port, child } = await startApp(name, dir)
  const base = `http://127.0.0.1:${port}`
  const cookies = []
  for (let i = 0; i < users; i++) {
    const response = await fetch(`${base}/login`)
    const set = response.headers.get('set-cookie')
    if (set) cookies.push(set.split(';')[0])
    await response.text()
  }
  const results = {}
  for (const route of ROUTES) {
    let next = 0
    const result = await autocannon({
      url: base,
      connections: 64,
      duration: durationSec,
      requests: [
        {
          method: 'GET',
          path: `/${route}`,
          setupRequest: (request) => {
            if (route !== 'login' && cookies.length) request.headers = { ...request.headers, cookie: cookies[next++ % cookies.length] }
            return request
          },
        },
      ],
    })
    results[route] = { reqPerSec: Math.round(result.requests.average), p99ms: result.latency.p99, errors: result.errors + result.non2xx }
  }
  child.kill('SIGTERM')
  await new Promise((resolve) => child.on('exit', resolve))
  return results
}

module.exports = { httpScenarios, ROUTES }
