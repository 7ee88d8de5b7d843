'use strict'

// The whole contract of every method, callback and promise forms, on a real file (the
// bodies are in contract.js, shared with the cluster's tests).

const test = require('node:test')
const { SQLiteStore } = require('..')
const { tempDb } = require('./helpers')
const { contractTests } = require('./contract')

contractTests(test, (options) => new SQLiteStore(tempDb(), options))
