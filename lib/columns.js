'use strict'

// The columns a store fills from the session on every set, as one list computed by one
// function: first the built-in, indexed `user_key` (from the `userKey` option), then
// the user's own `extraColumns` (from `extendDefaultFields`). `userKey` is simply the
// entry of that list the store declares itself and indexes.

const { storeError } = require('./errors')
const { isPlainObject } = require('./options')

const LONE_SURROGATE = /\p{Surrogate}/u

/** User keys are stored as text; numbers by their decimal form. */
function normalizeUserKey(key) {
  if (typeof key === 'string' && key.length > 0 && !LONE_SURROGATE.test(key)) return key
  if (typeof key === 'number' && Number.isFinite(key)) return String(key)
  return undefined
}

const invalidUserKey = () =>
  storeError('ERR_INVALID_USER_KEY', 'a user key must be a non-empty string or a finite number', TypeError)

const invalidField = (message) => storeError('ERR_INVALID_EXTRA_FIELD', message, TypeError)

/** A value for an extra column: text, number, boolean (0/1), Date (epoch ms) or null. */
function columnValue(value, name) {
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return value
  if (typeof value === 'number' && Number.isFinite(value)) return value
  if (typeof value === 'boolean') return value ? 1 : 0
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.getTime()
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
        const key = userKey(session)
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

  /** What extendDefaultFields gives, checked against the declared columns. */
  function fieldsOf(session, json, expires) {
    if (extra.length === 0 || extendDefaultFields === undefined) return {}
    const fields = extendDefaultFields({ data: json, expires: new Date(expires) }, session)
    if (!isPlainObject(fields)) throw invalidField('extendDefaultFields must return an object')
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
