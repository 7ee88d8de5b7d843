'use strict'

/** An Error (or TypeError) carrying a stable `code`, as every error of the store does. */
function storeError(code, message, Type = Error) {
  const error = new Type(message)
  error.code = code
  return error
}

/** Native errors arrive as `{ code, message }` from the writer thread: make them Errors. */
function fromFailure(failure) {
  return storeError(failure.code, failure.message)
}

const closedError = () => storeError('ERR_STORE_CLOSED', 'the session store is closed')

module.exports = { storeError, fromFailure, closedError }
