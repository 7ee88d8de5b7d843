'use strict'

// Loads the compiled addon through the generated loader, with a message that says what
// to do when no binary fits this platform.

function loadNative() {
  try {
    return require('../binding.js')
  } catch (cause) {
    const error = new Error(
      `express-sqlite-native has no binary for ${process.platform}-${process.arch} here. ` +
        'Build one with `npx express-sqlite-native-build` (needs Rust: cargo), or install with optional dependencies enabled.',
    )
    error.code = 'ERR_NO_NATIVE_BINARY'
    error.cause = cause
    throw error
  }
}

module.exports = loadNative()
