#!/usr/bin/env node
'use strict'

// Copies every live session, with its expiry, from one store to another: a file into an
// rqlite cluster when an app grows to several servers, or a cluster back into a file.
//
//   express-sqlite-native-copy <from> <to> [--table Sessions] [--to-table <name>]
//
// <from> and <to> are what SQLiteStore takes: a file path or rqlite://host:port,...
// (credentials as rqlite://user:password@host:port). Sessions already in <to> under the
// same id are overwritten; others are left alone. Run it while the app is stopped, or
// while it already writes to <to>: sessions written to <from> after the copy are not copied.

const { SQLiteStore } = require('..')

function parse(argv) {
  const positional = []
  const options = { table: 'Sessions', toTable: undefined }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--table') options.table = argv[++i]
    else if (argv[i] === '--to-table') options.toTable = argv[++i]
    else positional.push(argv[i])
  }
  if (positional.length !== 2 || !options.table) return null
  return { from: positional[0], to: positional[1], table: options.table, toTable: options.toTable ?? options.table }
}

async function main() {
  const args = parse(process.argv.slice(2))
  if (!args) {
    console.error('usage: express-sqlite-native-copy <from> <to> [--table Sessions] [--to-table <name>]')
    process.exitCode = 2
    return
  }
  const from = new SQLiteStore(args.from, { tableName: args.table, createTable: false, pruneInterval: false })
  const to = new SQLiteStore(args.to, { tableName: args.toTable, pruneInterval: false })
  try {
    const copied = await from.copyTo(to)
    console.log(`copied ${copied} live session${copied === 1 ? '' : 's'} from ${from.database.name} to ${to.database.name}`)
  } finally {
    await Promise.allSettled([from.close(), to.close()])
  }
}

main().catch((error) => {
  // The message names hosts and files, never credentials.
  console.error(`express-sqlite-native-copy: ${error.message} (${error.code ?? 'error'})`)
  process.exitCode = 1
})
