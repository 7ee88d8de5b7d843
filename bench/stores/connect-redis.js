'use strict'

// connect-redis with the node-redis client, as its README sets it up, against the
// redis-server run.js starts on 127.0.0.1 (BENCH_REDIS_URL). That server runs without
// persistence, so this is a network-store reference, not a durable one.

const { packageVersion } = require('../lib/versions')
const { redisServerVersion } = require('../lib/redis-server')

module.exports = {
  id: 'redis',
  name: 'connect-redis',
  durable: false,
  sqlite: false,
  needsRedis: true,
  version: packageVersion('connect-redis'),
  drivers: { redis: packageVersion('redis'), 'redis-server': redisServerVersion() },
  setup: 'new RedisStore({ client: createClient({ url }) }) against a local redis-server (no persistence)',
  noPrune: 'Redis expires keys itself',
  available() {
    if (!packageVersion('connect-redis')) return 'not installed (npm install in bench/)'
    if (!redisServerVersion()) return 'redis-server is not installed (apt-get install -y redis-server)'
    return true
  },
  async create() {
    const url = process.env.BENCH_REDIS_URL
    if (!url) throw new Error('BENCH_REDIS_URL is not set (run.js starts redis-server and sets it)')
    const { createClient } = require('redis')
    const { RedisStore } = require('connect-redis')
    const client = createClient({ url })
    await client.connect()
    // One store at a time uses the server: start each from an empty database.
    await client.flushDb()
    const store = new RedisStore({ client })
    return {
      store,
      close: () => client.quit(),
      async externalRssBytes() {
        const info = await client.info('memory')
        return Number(/used_memory_rss:(\d+)/.exec(info)?.[1]) || undefined
      },
    }
  },
}
