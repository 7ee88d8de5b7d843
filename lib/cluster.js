'use strict'

// Where an rqlite cluster is: `rqlite://[user:password@]host:port[,host:port...]`
// (`rqlites://` for https). Credentials are taken out of the address at once, so that
// the name a Database reports, and every message, carries hosts only.

const { typeError } = require('./options')

const SCHEMES = { __proto__: null, 'rqlite:': 'http', 'rqlites:': 'https' }

/** Whether a `database` argument names a cluster rather than a file. */
function isClusterAddress(database) {
  return typeof database === 'string' && /^rqlites?:\/\//i.test(database)
}

const invalid = (why) => typeError(`an rqlite address is rqlite://[user:password@]host:port[,host:port...]: ${why}`)

function decode(text) {
  try {
    return decodeURIComponent(text)
  } catch {
    throw invalid('the credentials are not valid percent-encoding')
  }
}

/** `{ name, nodes, username, password }` from an address. */
function parseClusterAddress(address) {
  const colon = address.indexOf(':')
  const protocol = SCHEMES[address.slice(0, colon + 1).toLowerCase()]
  let rest = address.slice(colon + 3).replace(/\/+$/, '')
  let username
  let password
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    const credentials = rest.slice(0, at)
    rest = rest.slice(at + 1)
    const split = credentials.indexOf(':')
    username = decode(split >= 0 ? credentials.slice(0, split) : credentials)
    password = split >= 0 ? decode(credentials.slice(split + 1)) : undefined
  }
  const hosts = rest.split(',')
  for (const host of hosts) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(host)) throw invalid('each node is host:port (no path or query)')
  }
  return {
    name: `${protocol === 'https' ? 'rqlites' : 'rqlite'}://${hosts.join(',')}`,
    nodes: hosts.map((host) => `${protocol}://${host}`),
    username,
    password,
  }
}

module.exports = { isClusterAddress, parseClusterAddress }
