'use strict'

const { storeError } = require('./errors')

const ignore = () => {}

/**
 * Serves a method in callback style or, when no callback is given, as a Promise.
 * `run(done)` must call `done(error, value)` exactly once, never synchronously.
 * A returned Promise that rejects without a handler never crashes the process.
 */
function callbackOrPromise(callback, run) {
  if (typeof callback === 'function') {
    run((error, ...values) => (error ? callback(error) : callback(undefined, ...values)))
    return undefined
  }
  const promise = new Promise((resolve, reject) => {
    if (callback != null) {
      reject(storeError('ERR_INVALID_ARG_TYPE', 'the callback must be a function', TypeError))
      return
    }
    run((error, value) => (error ? reject(error) : resolve(value)))
  })
  promise.catch(ignore)
  return promise
}

/** Rethrows an exception thrown by a user's callback outside our code, once. */
function rethrowLater(error) {
  process.nextTick(() => {
    throw error
  })
}

module.exports = { callbackOrPromise, rethrowLater }
