'use strict'

// What a session and its id must be, and the session's JSON in and out: set() and
// touch() refuse what get() could not give back as it was given.

const { storeError } = require('./errors')
const { isPlainObject, LONE_SURROGATE } = require('./options')

const MAX_SID_LENGTH = 4096

function invalidSid(sid) {
  if (typeof sid !== 'string' || sid.length === 0) {
    return storeError('ERR_INVALID_SID', 'the session id must be a non-empty string', TypeError)
  }
  if (sid.length > MAX_SID_LENGTH) {
    return storeError('ERR_INVALID_SID', `the session id is longer than ${MAX_SID_LENGTH} characters`, TypeError)
  }
  // Lone surrogates cannot be stored as text: two different ids would collide.
  if (LONE_SURROGATE.test(sid)) {
    return storeError('ERR_INVALID_SID', 'the session id contains an unpaired UTF-16 surrogate', TypeError)
  }
  return undefined
}

/**
 * A stored session: any JSON object, as set() stored it, cookie or not (set() refuses
 * anything else). Undefined for a row another program wrote that is not one.
 */
function parseSession(json) {
  let session
  try {
    session = JSON.parse(json)
  } catch {
    return undefined
  }
  return isPlainObject(session) ? session : undefined
}

const invalidSession = (message) => storeError('ERR_INVALID_SESSION', message, TypeError)

/**
 * Why a session given to set() or touch() cannot be used, or undefined. A Proxy can
 * throw from the mere type check (revoked, or a throwing getPrototypeOf trap).
 */
function sessionTypeError(session) {
  try {
    if (isPlainObject(session)) return undefined
  } catch {
    return invalidSession('the session is a Proxy that cannot be inspected (revoked, or a trap threw)')
  }
  return invalidSession('the session must be an object')
}

/** The session's JSON text, checked: an object, within `maxBytes`. */
function sessionJson(session, maxBytes) {
  let json
  try {
    json = JSON.stringify(session)
  } catch (thrown) {
    // No `cause`: what JSON.stringify threw can carry session data (a getter's or
    // toJSON's own message; V8 names the keys along a circular path). The reason is
    // told by its kind only.
    throw invalidSession(`the session cannot be serialized to JSON: ${unserializableReason(thrown)}`)
  }
  // What get() gives back is what JSON.parse makes of this: it must be an object too
  // (a Date session is a string, a toJSON can give anything, or undefined).
  if (typeof json !== 'string' || json.charCodeAt(0) !== 0x7b /* { */) {
    throw invalidSession('the session serializes to JSON that is not an object (a Date, or a toJSON giving something else)')
  }
  // Each UTF-16 unit is at most 3 UTF-8 bytes: count exactly only when it could matter.
  if (json.length * 3 > maxBytes && Buffer.byteLength(json) > maxBytes) {
    throw storeError('ERR_SESSION_TOO_LARGE', `the session is larger than maxSessionBytes (${maxBytes} bytes)`, RangeError)
  }
  return json
}

/** Why JSON.stringify failed, without a word of what it was given. */
function unserializableReason(thrown) {
  // The engines' own errors are TypeErrors and, for a stack overflow, RangeErrors (V8,
  // JavaScriptCore); anything else was thrown by the session's own code, which can
  // also throw a Proxy whose every trap throws: looking at it is guarded too.
  try {
    if (thrown instanceof RangeError && /call stack/i.test(String(thrown.message))) return 'it is nested too deeply'
    const message = thrown instanceof TypeError ? String(thrown.message) : ''
    if (/circular|cyclic/i.test(message)) return 'it contains a circular reference'
    if (/BigInt/.test(message)) return 'it contains a BigInt'
  } catch {
    // what it threw could not even be looked at: the session's own code, then
  }
  return 'a getter, toJSON or Proxy trap in it threw (or it holds a value JSON cannot represent)'
}

module.exports = { invalidSid, parseSession, sessionTypeError, sessionJson }
