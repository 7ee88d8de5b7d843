'use strict'

// The columns a store fills from the session on every set, as one list computed by one
// function: first the built-in, indexed `user_key` (from the `userKey` option), then
// the user's own `extraColumns` (from `extendDefaultFields`). `userKey` is simply the
// entry of that list the store declares itself and indexes.

const { types } = require('node:util')
const { storeError } = require('./errors')
const { isPlainObject, LONE_SURROGATE } = require('./options')

/** User keys are stored as text; numbers by their decimal form. */
function normalizeUserKey(key) {
  if (typeof key === 'string' && key.length > 0 && !LONE_SURROGATE.test(key)) return key
  if (typeof key === 'number' && Number.isFinite(key)) return String(key)
  return undefined
}

const invalidUserKey = (message = 'a user key must be a non-empty string or a finite number') =>
  storeError('ERR_INVALID_USER_KEY', message, TypeError)

const invalidField = (message) => storeError('ERR_INVALID_EXTRA_FIELD', message, TypeError)

/** A value for an extra column: text, number, boolean (0/1), Date (epoch ms) or null. */
function columnValue(value, name) {
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return value
  if (typeof value === 'number' && Number.isFinite(value)) return value
  if (typeof value === 'boolean') return value ? 1 : 0
  // By its internal slot, not by instanceof or its own getTime: no user code runs.
  if (types.isDate(value)) {
    const time = Date.prototype.getTime.call(value)
    if (!Number.isNaN(time)) return time
  }
  throw invalidField(`extendDefaultFields gave column "${name}" a value that is not text, a number, a boolean, a Date or null`)
}

/**
 * The column list for a store's options, and `values(session, json, expires)`: one
 * value per column, in list order (`user_key` first). Throws a TypeError with a code
 * for a value that cannot be stored; nothing is written then.
 *
 * @returns {{ extra: { name: string, sqlType: string }[], values: Function }}
 *   `extra` is what the native table declares beside its own columns.
 */
function sessionColumns({ userKey, extraColumns, extendDefaultFields }) {
  const columns = [
    {
      name: 'user_key',
      sqlType: 'TEXT',
      builtIn: true,
      value(session) {
        if (userKey === undefined) return null
        let key
        try {
          key = userKey(session)
        } catch {
          // Not what it threw: that can quote the session.
          throw invalidUserKey('the userKey function threw')
        }
        if (key === null || key === undefined) return null
        const normalized = normalizeUserKey(key)
        if (normalized === undefined) throw invalidUserKey()
        return normalized
      },
    },
    ...Object.entries(extraColumns).map(([name, sqlType]) => ({
      name,
      sqlType,
      builtIn: false,
      value: (session, fields) => columnValue(fields[name], name),
    })),
  ]
  const extra = columns.filter((c) => !c.builtIn)
  const names = new Set(extra.map((c) => c.name))

  /**
   * What extendDefaultFields gives, checked against the declared columns: its own
   * enumerable properties, each read once, in an object without a prototype (a column
   * named "constructor" is then not Object's constructor).
   */
  function fieldsOf(session, json, expires) {
    if (extra.length === 0 || extendDefaultFields === undefined) return Object.create(null)
    const fields = Object.create(null)
    let isObject
    try {
      const result = extendDefaultFields({ data: json, expires: new Date(expires) }, session)
      isObject = isPlainObject(result)
      if (isObject) for (const name of Object.keys(result)) fields[name] = result[name]
    } catch {
      // Not what it threw: that can quote the session.
      throw invalidField('extendDefaultFields threw, or a getter or Proxy trap of what it returned threw')
    }
    if (!isObject) throw invalidField('extendDefaultFields must return an object')
    for (const name of Object.keys(fields)) {
      if (name !== 'data' && name !== 'expires' && !names.has(name)) {
        throw invalidField(`extendDefaultFields returned "${name}", which is not in extraColumns`)
      }
    }
    return fields
  }

  return {
    extra: extra.map(({ name, sqlType }) => ({ name, sqlType })),
    values(session, json, expires) {
      // In list order, so user code runs (and fails) in the same order on every set.
      let fields
      return columns.map((column) =>
        column.value(session, column.builtIn ? undefined : (fields ??= fieldsOf(session, json, expires))),
      )
    },
  }
}

module.exports = { sessionColumns, normalizeUserKey, invalidUserKey }
