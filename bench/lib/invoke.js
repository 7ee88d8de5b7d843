'use strict'

// Calls a callback-style store method as a promise of its result.

function invoke(store, method, args = []) {
  return new Promise((resolve, reject) => {
    store[method](...args, (error, value) => (error ? reject(error) : resolve(value)))
  })
}

module.exports = { invoke }
