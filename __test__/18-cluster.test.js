'use strict'

// The same store on an rqlite cluster: three real rqlited nodes on 127.0.0.1, started
// and stopped here. Behaviour first (what the local file does, the cluster does), then
// consistency across nodes, group commit, pruning once per cluster, Express over HTTP,
// and the faults: the leader killed under load, quorum lost and regained.

const test = require('node:test')
const assert = require('node:assert/strict')
const { SQLiteStore } = require('..')
const { createApp } = require('../examples/app')
const { Cluster, sleep } = require('./rqlite')
const { execFile } = require('node:child_process')
const { sessionFor } = require('./helpers')
const { contractTests } = require('./contract')

/** Runs a Node script in a child process, beside others (unlike helpers' runScript). */
function runChild(source) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', source], { timeout: 60_000 }, (error, stdout, stderr) =>
      error ? reject(Object.assign(error, { stderr })) : resolve({ stdout, stderr }),
    )
  })
}

let cluster
test.before(async () => {
  cluster = await Cluster.start({ size: 3 })
})
test.after(async () => {
  await cluster?.stop()
})

let tables = 0
/** A store on the cluster, on a table of its own so that tests do not see each other. */
function clusterStore(options = {}, nodes) {
  return new SQLiteStore(cluster.address(nodes), { tableName: `t${++tables}`, ...options })
}

const future = (ms) => new Date(Date.now() + ms).toISOString()

// The contract every engine keeps, the same bodies as on a file (01-lifecycle).
contractTests(test, (options) => clusterStore(options), 'cluster: ')

test('every store method works on the cluster, with callbacks and promises', async () => {
  const store = clusterStore()
  assert.equal(store.database.name, cluster.address())
  await store.set('a', sessionFor('ada'))
  await new Promise((resolve, reject) => store.set('b', sessionFor('bob'), (e) => (e ? reject(e) : resolve())))
  assert.deepEqual((await store.get('a')).user, 'ada')
  assert.equal(await store.get('missing'), null)
  assert.equal(await store.length(), 2)
  assert.deepEqual(await store.ids(), ['a', 'b'])
  assert.deepEqual((await store.all()).map((s) => [s.id, s.user]), [['a', 'ada'], ['b', 'bob']])
  assert.equal(await store.touch('a', sessionFor('ada', 120_000)), 'OK')
  assert.equal(await store.touch('missing', sessionFor('x')), 'EXPIRED')
  await store.destroy('a')
  assert.equal(await store.get('a'), null)
  await store.clear()
  assert.equal(await store.length(), 0)
  const got = await new Promise((resolve) => store.get('b', (error, session) => resolve([error, session])))
  assert.deepEqual(got, [undefined, null])
  await store.close()
})

test('expiry is invisible to the millisecond, and prune deletes only the expired', async () => {
  const store = clusterStore({ pruneInterval: false })
  const expires = Date.now() + 400
  await store.set('short', { cookie: { expires: new Date(expires).toISOString() } })
  await store.set('long', sessionFor('x', 60_000))
  assert.ok(await store.get('short'), 'live before its expiry')
  while (Date.now() <= expires) await sleep(20)
  assert.equal(await store.get('short'), null, 'gone after its expiry')
  assert.equal(await store.length(), 1)
  assert.equal((await store.stats()).expired, 1)
  assert.equal(await store.prune(), 1)
  assert.deepEqual(await store.ids(), ['long'])
  await store.close()
})

test('maxLifetime caps a session however often it is touched; touchAfter skips touches', async () => {
  const capped = clusterStore({ maxLifetime: 0.5 })
  await capped.set('s', sessionFor('x', 60_000))
  const created = Date.now()
  for (let i = 0; i < 3; i++) assert.equal(await capped.touch('s', sessionFor('x', 60_000)), 'OK')
  while (Date.now() < created + 700) await sleep(50)
  assert.equal(await capped.get('s'), null, 'past its lifetime')
  await capped.close()

  const lazy = clusterStore({ touchAfter: 3600 })
  await lazy.set('s', sessionFor('x', 60_000))
  assert.equal(await lazy.touch('s', sessionFor('x', 120_000)), 'OK')
  assert.equal((await lazy.stats()).touchesSkipped, 1, 'written moments ago: the touch is skipped')
  assert.equal(await lazy.touch('missing', sessionFor('x')), 'EXPIRED')
  await lazy.close()
})

test('sessions by user, size limits and invalid input give the same results and codes as a file', async () => {
  const store = clusterStore({ userKey: (session) => session.user, maxSessionBytes: 1000 })
  await store.set('a1', sessionFor('ada'))
  await store.set('a2', sessionFor('ada'))
  await store.set('b1', sessionFor('bob'))
  assert.deepEqual(await store.idsByUser('ada'), ['a1', 'a2'])
  assert.equal(await store.destroyByUser('ada', { except: 'a2' }), 1)
  assert.deepEqual(await store.idsByUser('ada'), ['a2'])
  await assert.rejects(store.set('big', { ...sessionFor('ada'), blob: 'x'.repeat(2000) }), { code: 'ERR_SESSION_TOO_LARGE' })
  await assert.rejects(store.get(''), { code: 'ERR_INVALID_SID' })
  await assert.rejects(store.set('x', null), { code: 'ERR_INVALID_SESSION' })
  await store.close()
  await assert.rejects(store.get('a2'), { code: 'ERR_STORE_CLOSED' })
})

test('a session written through one node is read back fresh through each of the others', async () => {
  const writer = clusterStore({}, [0])
  const readers = [1, 2].map((i) => new SQLiteStore(cluster.address([i]), { tableName: `t${tables}` }))
  for (let i = 0; i < 50; i++) {
    await writer.set('s', { ...sessionFor('x'), n: i })
    for (const reader of readers) assert.equal((await reader.get('s')).n, i, `read ${i} through another node`)
  }
  await Promise.all([writer, ...readers].map((s) => s.close()))
})

test('the writes of one event-loop turn reach the cluster as one transaction (one Raft entry)', async () => {
  const store = clusterStore()
  await store.set('warm', sessionFor('x'))
  const index = async () => (await cluster.status(0)).store.raft.last_log_index
  const before = Number(await index())
  await Promise.all(Array.from({ length: 64 }, (_, i) => store.set(`s${i}`, sessionFor('x'))))
  const entries = Number(await index()) - before
  assert.ok(entries >= 1 && entries <= 2, `64 sets took ${entries} Raft entries`)
  assert.equal(await store.length(), 65)
  await store.close()
})

test('two app processes on different nodes see each other\'s writes', async () => {
  const tableName = `t${++tables}`
  const child = (node, mine, theirs) => `
    const { SQLiteStore } = require(${JSON.stringify(require.resolve('..'))})
    const store = new SQLiteStore(${JSON.stringify(cluster.address([node]))}, { tableName: ${JSON.stringify(tableName)} })
    ;(async () => {
      for (let i = 0; i < 20; i++) await store.set('${mine}' + i, { cookie: { maxAge: 60000 }, from: '${mine}' })
      const deadline = Date.now() + 20000
      let seen = []
      while (Date.now() < deadline) {
        seen = (await store.ids()).filter((id) => id.startsWith('${theirs}'))
        if (seen.length === 20) break
        await new Promise((r) => setTimeout(r, 50))
      }
      const other = await store.get('${theirs}7')
      console.log(JSON.stringify({ seen: seen.length, from: other && other.from }))
      await store.close()
    })()`
  const [a, b] = await Promise.all([runChild(child(0, 'a', 'b')), runChild(child(2, 'b', 'a'))])
  assert.deepEqual(JSON.parse(a.stdout), { seen: 20, from: 'b' })
  assert.deepEqual(JSON.parse(b.stdout), { seen: 20, from: 'a' })
})

test('scheduled prunes run once per cluster per interval, however many app servers share it', async () => {
  const tableName = `t${++tables}`
  const stores = [0, 1, 2].map((i) => new SQLiteStore(cluster.address([i]), { tableName, pruneInterval: 1 }))
  // Long enough to set them all first (a session set already expired is not stored).
  const expired = Date.now() + 3000
  for (let i = 0; i < 30; i++) await stores[i % 3].set(`old${i}`, { cookie: { expires: new Date(expired).toISOString() } })
  assert.equal(await stores[0].length(), 30)
  while (Date.now() <= expired) await sleep(50)
  await Promise.all(stores.map((s) => s.stats()))
  const before = await Promise.all(stores.map((s) => s.stats()))
  const count = (stats, field) => stats.reduce((sum, s) => sum + s[field], 0)
  await sleep(4200)
  const stats = await Promise.all(stores.map((s) => s.stats()))
  const runs = count(stats, 'pruneRuns') - count(before, 'pruneRuns')
  const skipped = count(stats, 'prunesSkipped') - count(before, 'prunesSkipped')
  const pruned = count(stats, 'rowsPruned')
  // Each store alone would prune 3-8 times in 4.2 s (every 0.5-1.5 s); the lease lets
  // one prune per second of the three together.
  assert.ok(runs >= 2 && runs <= 6, `${runs} prunes in 4.2 s at a 1 s interval`)
  assert.ok(skipped >= 2, `the others skipped their turn (${skipped})`)
  assert.equal(pruned, 30)
  assert.equal((await stores[0].stats()).expired, 0)
  await Promise.all(stores.map((s) => s.close()))
})

test('express-session over HTTP: login, read, write and logout on the cluster', async () => {
  const store = clusterStore()
  const server = createApp(store).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  const get = async (path, cookie) => {
    const response = await fetch(base + path, { headers: cookie ? { cookie } : {} })
    const setCookie = response.headers.get('set-cookie')
    return { status: response.status, body: await response.text(), cookie: setCookie && setCookie.split(';')[0] }
  }
  try {
    assert.equal((await get('/me')).status, 401)
    const login = await get('/login?name=ada')
    assert.deepEqual(JSON.parse((await get('/me', login.cookie)).body), { name: 'ada' })
    await get('/', login.cookie)
    assert.match((await get('/', login.cookie)).body, /visit 2/)
    assert.equal(await store.length(), 1)
    assert.equal((await get('/logout', login.cookie)).status, 200)
    assert.equal((await get('/me', login.cookie)).status, 401)
    assert.equal(await store.length(), 0)
  } finally {
    await new Promise((resolve) => server.close(resolve))
    await store.close()
  }
})

test('killing the leader (SIGKILL) under a write load loses no acknowledged write, and writes resume', async (t) => {
  const store = clusterStore({ databaseOptions: { timeout: 15_000 } })
  const acknowledged = []
  const failed = []
  let stop = false
  let killedAt = 0
  const writer = async (w) => {
    for (let i = 0; !stop; i++) {
      const sid = `w${w}-${i}`
      try {
        await store.set(sid, sessionFor('x'))
        acknowledged.push([sid, Date.now()])
      } catch (error) {
        failed.push(error.code)
      }
    }
  }
  const writers = Array.from({ length: 32 }, (_, w) => writer(w))
  await sleep(1000)
  const leader = await cluster.waitForLeader()
  killedAt = Date.now()
  await cluster.kill(leader, 'SIGKILL')
  await cluster.waitForLeader(15_000)
  await sleep(1500)
  stop = true
  await Promise.all(writers)
  await store.close()
  const after = acknowledged.filter(([, at]) => at > killedAt)
  assert.ok(after.length > 0, 'writes resumed after the kill')
  const times = acknowledged.map(([, at]) => at).sort((a, b) => a - b)
  const pause = Math.max(...times.slice(1).map((at, i) => (at > killedAt ? at - times[i] : 0)))
  t.diagnostic(`${acknowledged.length} writes acknowledged (${after.length} after the kill); longest pause after the kill ${pause} ms`)
  assert.ok(acknowledged.length > 100, `${acknowledged.length} writes acknowledged`)
  assert.deepEqual(failed, [], 'no write failed: the store waited out the election')
  cluster.restart(leader)
  await cluster.waitForLeader()
  // Every acknowledged write, on every node (each answering from its own copy).
  const table = `t${tables}`
  for (let i = 0; i < cluster.nodes.length; i++) {
    const deadline = Date.now() + 20_000
    let ids
    do {
      ids = new Set((await cluster.query(i, `SELECT id FROM "${table}"`).catch(() => [])).map(([id]) => id))
      if (acknowledged.every(([sid]) => ids.has(sid))) break
      await sleep(200)
    } while (Date.now() < deadline)
    const lost = acknowledged.filter(([sid]) => !ids.has(sid))
    assert.equal(lost.length, 0, `node ${i} lacks ${lost.length} of ${acknowledged.length} acknowledged writes`)
  }
})

test('with quorum lost every call fails within the timeout, disconnect is emitted, and connect when it is back', async () => {
  const store = clusterStore({ databaseOptions: { timeout: 1000 } })
  await store.set('before', sessionFor('x'))
  const events = []
  store.on('disconnect', () => events.push('disconnect'))
  store.on('connect', () => events.push('connect'))
  const leader = await cluster.waitForLeader()
  const others = [0, 1, 2].filter((i) => i !== leader)
  await cluster.kill(others[0], 'SIGKILL')
  await cluster.kill(others[1], 'SIGKILL')
  const calls = [() => store.set('during', sessionFor('x')), () => store.get('before'), () => store.length()]
  for (const [i, call] of calls.entries()) {
    const started = Date.now()
    await assert.rejects(call(), (error) => {
      assert.equal(error.code, 'ERR_CLUSTER_UNAVAILABLE')
      assert.match(error.message, /within 1000 ms/)
      return true
    })
    const took = Date.now() - started
    assert.ok(took < 5000, `failed within the timeout (plus one request), not hung (${took} ms)`)
    // Once it is known to be down, calls fail at once rather than each waiting it out.
    if (i > 0) assert.ok(took < 1000, `call ${i} failed without waiting out the timeout again (${took} ms)`)
  }
  await sleep(50)
  assert.deepEqual(events, ['disconnect'])
  cluster.restart(others[0])
  cluster.restart(others[1])
  await cluster.waitForLeader(30_000)
  const deadline = Date.now() + 20_000
  while (!events.includes('connect') && Date.now() < deadline) await sleep(100)
  assert.deepEqual(events, ['disconnect', 'connect'])
  await store.set('after', sessionFor('x'))
  assert.ok(await store.get('before'))
  assert.ok(await store.get('after'))
  await store.close()
})

test('sessions move from a file to the cluster and back with their expiries (copyTo and the copy command)', async () => {
  const fs = require('node:fs')
  const path = require('node:path')
  const { tempDb } = require('./helpers')
  const file = tempDb()
  const local = new SQLiteStore(file)
  const expiries = new Map()
  for (let i = 0; i < 300; i++) {
    const expires = Date.now() + 60_000 + i * 1000
    expiries.set(`s${i}`, expires)
    await local.set(`s${i}`, { cookie: { expires: new Date(expires).toISOString() }, n: i })
  }
  await local.set('expired', { cookie: { expires: future(50) } })
  await sleep(80)
  const remote = clusterStore()
  assert.equal(await local.copyTo(remote), 300, 'every live session, not the expired one')
  assert.equal(await remote.length(), 300)
  assert.equal((await remote.get('s7')).n, 7)
  assert.equal((await remote.get('s7')).cookie.expires, new Date(expiries.get('s7')).toISOString())
  await local.close()
  await remote.close()

  // And back, by the command, into a new file.
  const back = path.join(path.dirname(file), 'back.db')
  const bin = path.join(__dirname, '..', 'scripts', 'copy-sessions.js')
  const run = await new Promise((resolve, reject) =>
    execFile(process.execPath, [bin, cluster.address(), back, '--table', `t${tables}`], (error, stdout, stderr) =>
      error ? reject(Object.assign(error, { stderr })) : resolve(stdout),
    ),
  )
  assert.match(run, /copied 300 live sessions/)
  const restored = new SQLiteStore(back, { tableName: `t${tables}` })
  assert.equal(await restored.length(), 300)
  assert.equal((await restored.get('s299')).cookie.expires, new Date(expiries.get('s299')).toISOString())
  await restored.close()
  assert.ok(fs.existsSync(back))
})

test('backup(path) writes the cluster\'s database to a local SQLite file', async () => {
  const path = require('node:path')
  const { tempDir } = require('./helpers')
  const store = clusterStore()
  for (let i = 0; i < 20; i++) await store.set(`s${i}`, sessionFor('x'))
  const target = path.join(tempDir(), 'copy.db')
  await store.backup(target)
  await store.close()
  const copy = new SQLiteStore(target, { tableName: `t${tables}`, createTable: false })
  assert.equal(await copy.length(), 20)
  await copy.close()
  await assert.rejects(store.backup(target), { code: 'ERR_STORE_CLOSED' })
})

test('basic auth: the right credentials work, wrong ones fail with ERR_CLUSTER_AUTH, and none ever shows', async () => {
  const secret = 'pa ss:w0rd@secret'
  const guarded = await Cluster.start({ size: 1, auth: { username: 'app', password: secret } })
  try {
    const inAddress = guarded.address(undefined, `app:${encodeURIComponent(secret)}@`)
    const store = new SQLiteStore(inAddress)
    await store.set('s', sessionFor('x'))
    assert.equal((await store.get('s')).user, 'x')
    assert.ok(!store.database.name.includes(secret) && !store.database.name.includes('app:'), store.database.name)
    assert.ok(!JSON.stringify(await store.stats()).includes(secret))
    await store.close()

    const asOption = new SQLiteStore(guarded.address(), { databaseOptions: { username: 'app', password: secret } })
    await asOption.set('t', sessionFor('y'))
    await asOption.close()

    const wrong = new SQLiteStore(guarded.address(), { databaseOptions: { username: 'app', password: 'wrong-password' } })
    const seen = []
    wrong.on('error', (error) => seen.push(error))
    await assert.rejects(wrong.get('s'), (error) => {
      assert.equal(error.code, 'ERR_CLUSTER_AUTH')
      assert.ok(!error.message.includes('wrong-password') && !error.stack.includes('wrong-password'), error.message)
      return true
    })
    await wrong.close()
    for (const error of seen) assert.ok(!error.message.includes('wrong-password'))
  } finally {
    await guarded.stop()
  }
})

test('https: a node with a certificate from a given CA works; without trusting that CA, calls fail', async () => {
  const path = require('node:path')
  const fs = require('node:fs')
  const tls = path.join(__dirname, 'fixtures', 'tls')
  const secure = await Cluster.start({ size: 1, tls: { cert: path.join(tls, 'cert.pem'), key: path.join(tls, 'key.pem') } })
  try {
    assert.match(secure.address(), /^rqlites:\/\//)
    const store = new SQLiteStore(secure.address(), { databaseOptions: { ca: fs.readFileSync(path.join(tls, 'ca.pem')) } })
    await store.set('s', sessionFor('x'))
    assert.equal((await store.get('s')).user, 'x')
    await store.close()
    // A certificate nobody trusts stays untrusted: once every node has shown one, the
    // call fails, naming TLS, without retrying until its timeout.
    const untrusting = new SQLiteStore(secure.address(), { databaseOptions: { timeout: 30_000 } })
    const started = Date.now()
    await assert.rejects(untrusting.get('s'), (error) => {
      assert.equal(error.code, 'ERR_CLUSTER_UNAVAILABLE')
      assert.match(error.message, /TLS/)
      return true
    })
    assert.ok(Date.now() - started < 15_000, 'not retried until the 30 s timeout')
    await untrusting.close()
  } finally {
    await secure.stop()
  }
})

test('a malformed cluster address or option is a TypeError from the constructor', () => {
  for (const address of ['rqlite://', 'rqlite://host', 'rqlite://h:1/db', 'rqlite://h:1?x=1', 'rqlite://a:b@']) {
    assert.throws(() => new SQLiteStore(address), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }, address)
  }
  assert.throws(() => new SQLiteStore(cluster.address(), { databaseOptions: { consistency: 'eventual' } }), { name: 'TypeError' })
})

test('a node that answers but is not rqlite fails each call at once with ERR_CLUSTER_REQUEST', async () => {
  const http = require('node:http')
  const server = http.createServer((req, res) => res.writeHead(404).end('not rqlite here'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const store = new SQLiteStore(`rqlite://127.0.0.1:${server.address().port}`, { databaseOptions: { timeout: 20_000 } })
  try {
    const started = Date.now()
    await assert.rejects(store.get('s'), (error) => {
      assert.equal(error.code, 'ERR_CLUSTER_REQUEST')
      assert.match(error.message, /HTTP 404/)
      return true
    })
    assert.ok(Date.now() - started < 10_000, 'not retried until the 20 s timeout')
  } finally {
    await store.close()
    server.close()
  }
})

test('replies over 10 MiB are read whole (all() of large sessions), and prune() works as the first call', async () => {
  const store = clusterStore()
  const big = 'x'.repeat(900 * 1024)
  for (let i = 0; i < 13; i++) await store.set(`big${i}`, { ...sessionFor('x'), big })
  const all = await store.all()
  assert.equal(all.length, 13)
  assert.equal(all[12].big.length, big.length)
  await store.close()
  const first = clusterStore()
  assert.equal(await first.prune(), 0)
  await first.close()
})

test('extra columns a store declares are added to a table another app server made without them', async () => {
  const tableName = `t${++tables}`
  const plain = new SQLiteStore(cluster.address(), { tableName })
  await plain.set('a', sessionFor('ada'))
  await plain.close()
  const wider = new SQLiteStore(cluster.address(), {
    tableName,
    extraColumns: { plan: 'TEXT' },
    extendDefaultFields: (defaults, session) => ({ plan: session.plan ?? null }),
  })
  await wider.set('b', { ...sessionFor('bob'), plan: 'pro' })
  const leader = await cluster.waitForLeader()
  assert.deepEqual(await cluster.query(leader, `SELECT id, plan FROM "${tableName}" ORDER BY id`), [["a", null], ["b", "pro"]])
  await wider.close()
})

test('the gets of one turn (one statement on the cluster) each get their own answer: hits, misses, repeats, expired', async () => {
  const store = clusterStore()
  for (let i = 0; i < 40; i++) await store.set(`s${i}`, { ...sessionFor('x'), n: i })
  await store.set('soon', { cookie: { expires: future(300) } })
  const other = clusterStore()
  await other.set('s1', { ...sessionFor('y'), n: 'other table' })
  await sleep(350)
  const sids = [...Array.from({ length: 40 }, (_, i) => `s${i}`), 's3', 's3', 'missing', 'soon', 's39']
  const got = await Promise.all([...sids.map((sid) => store.get(sid)), other.get('s1'), other.get('s2')])
  assert.deepEqual(
    got.map((s) => (s === null ? null : s.n)),
    [...Array.from({ length: 40 }, (_, i) => i), 3, 3, null, null, 39, 'other table', null],
  )
  await Promise.all([store.close(), other.close()])
})
