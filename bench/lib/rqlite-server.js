'use strict'

// rqlite clusters for the cluster stores: the test suite's launcher (real rqlited nodes
// on 127.0.0.1, stopped by pid), started once by run.js and shared by every round.

const path = require('node:path')
const { ROOT_DIR } = require('./versions')

async function startRqlite(size) {
  const { Cluster } = require(path.join(ROOT_DIR, '__test__', 'rqlite.js'))
  const cluster = await Cluster.start({ size })
  return { url: cluster.address(), stop: () => cluster.stop() }
}

module.exports = { startRqlite }
