'use strict'

// Whether a bench dependency with a native addon loads in this Node. Its binary is
// built for the Node that ran npm install; under another Node major it fails to load,
// and the store is then skipped with that reason instead of failing mid-run.

const checks = {
  'better-sqlite3': () => {
    const Database = require('better-sqlite3')
    new Database(':memory:').close()
  },
  sqlite3: () => require('sqlite3'),
}

/** true, or why `name` cannot be used here. */
function nativeDepLoads(name) {
  try {
    checks[name]()
    return true
  } catch (error) {
    const first = String(error && error.message).split('\n')[0]
    return `${name} does not load in Node ${process.versions.node} (${first}); run npm install in bench/ with this Node`
  }
}

module.exports = { nativeDepLoads }
