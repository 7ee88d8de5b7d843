'use strict'

// What the probes share: --name=value flags, and the store under test from the bench's
// registry (stores/): --store=native (the default, this checkout's build), memory
// (MemoryStore), or native-baseline, the build of the checkout ESN_BASELINE_DIR names
// (an absolute path; e.g. one with phase-timing.patch applied).

const { findStore } = require('../stores')

function flags() {
  const out = {}
  for (const arg of process.argv.slice(2)) {
    const [name, ...rest] = arg.replace(/^--/, '').split('=')
    const value = rest.join('=')
    out[name] = rest.length === 0 ? true : value === '' || Number.isNaN(Number(value)) ? value : Number(value)
  }
  return out
}

/** The store module --store names, checked to be available here. */
function storeUnderTest() {
  const id = flags().store || 'native'
  const storeModule = findStore(id)
  if (!storeModule) throw new Error(`no store ${id} in bench/stores (node run.js --list)`)
  const available = storeModule.available()
  if (available !== true) throw new Error(`${storeModule.name}: ${available}`)
  return storeModule
}

module.exports = { flags, storeUnderTest }
