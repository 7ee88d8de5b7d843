'use strict'

// The registry of stores under test, in report order (ours first, then the in-process
// ceiling, then the SQLite peers, then the other references). Each module exports:
//   id, name          --stores accepts either; reports show the name
//   ours, durable, sqlite   sqlite stores other than ours compete for "best SQLite peer"
//   version, drivers  resolved versions, recorded in the results
//   setup, notes      how it is constructed (as its README says) and caveats
//   available()       true, or why it cannot run here (the run records the reason)
//   noPrune           why there is no prune phase, when it has no cleanup function
//   create(dir)       -> { store, close(), files?, prune?(), fastWrites?(on),
//                          externalRssBytes?() } on a fresh file in dir

const stores = [
  require('./express-sqlite-native'),
  require('./express-sqlite-native-baseline'),
  require('./express-sqlite-native-rqlite').one,
  require('./express-sqlite-native-rqlite').three,
  require('./memory-store'),
  require('./node-sqlite'),
  require('./express-sqlite'),
  require('./better-sqlite3-session-store'),
  require('./connect-sqlite3'),
  require('./connect-session-knex'),
  require('./memorystore'),
  require('./connect-redis'),
]

/** The store module for an id or a name; case only matters where it must ("MemoryStore"
 * is express-session's, "memorystore" the package). Undefined when unknown. */
function findStore(key) {
  const exact = stores.find((s) => s.id === key || s.name === key)
  if (exact) return exact
  const wanted = String(key).toLowerCase()
  const loose = stores.filter((s) => s.id.toLowerCase() === wanted || s.name.toLowerCase() === wanted)
  return loose.length === 1 ? loose[0] : undefined
}

module.exports = { stores, findStore }
