'use strict'

// Command-line flags of run.js. Explicit flags override the --quick preset.

const USAGE = `Usage: node run.js [flags]
  --quick              short smoke run (1 round, N = 10,000, short phases; under 2 min)
  --stores=a,b         only these stores (names or ids, see --list)
  --n=10000,100000     session counts for the store API benchmark
  --rounds=3           interleaved rounds per store (medians and min-max over them)
  --only=floor,api,prune,http  run only these parts (--skip=... to leave parts out;
                       floor: the raw SQLite floor, bench/floor.rs, built with cargo)
  --budget=400         ms per measured store API phase
  --seconds=4          s of load per HTTP route
  --prune-n=100000     expired sessions to prune
  --users=1000         logged-in users (cookies) rotated by the HTTP load
  --http-sessions=10000  other sessions already in the store during the HTTP benchmark
  --connections=64     HTTP connections
  --out=results        where results are written (relative to bench/)
  --list               list the stores and whether they can run here
  --help`

const PARTS = ['floor', 'api', 'prune', 'http']

const FULL = {
  rounds: 3,
  sizes: [10_000, 100_000],
  budgetMs: 400,
  httpSeconds: 4,
  warmupSeconds: 0.5,
  pruneN: 100_000,
  users: 1000,
  httpSessions: 10_000,
  connections: 64,
}

const QUICK = {
  ...FULL,
  rounds: 1,
  sizes: [10_000],
  budgetMs: 200,
  httpSeconds: 1,
  warmupSeconds: 0.5,
  pruneN: 10_000,
  users: 64,
  httpSessions: 1_000,
}

const list = (value) => String(value).split(',').map((s) => s.trim()).filter(Boolean)
const positive = (name, value) => {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} needs a positive number, not "${value}"`)
  return n
}

function parseArgs(argv) {
  const flags = {}
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (!match) throw new Error(`unexpected argument "${arg}"\n${USAGE}`)
    flags[match[1]] = match[2] ?? true
  }
  const options = { ...(flags.quick ? QUICK : FULL), quick: Boolean(flags.quick), parts: [...PARTS] }
  for (const [name, value] of Object.entries(flags)) {
    switch (name) {
      case 'quick':
        break
      case 'help':
      case 'list':
        options[name] = true
        break
      case 'stores':
        options.stores = list(value)
        break
      case 'n':
        options.sizes = list(value).map((v) => Math.round(positive('n', v)))
        break
      case 'rounds':
        options.rounds = Math.round(positive(name, value))
        break
      case 'only':
      case 'skip': {
        const named = list(value)
        const unknown = named.filter((p) => !PARTS.includes(p))
        if (unknown.length) throw new Error(`--${name}: unknown part ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`)
        options.parts = name === 'only' ? named : options.parts.filter((p) => !named.includes(p))
        break
      }
      case 'budget':
        options.budgetMs = positive(name, value)
        break
      case 'seconds':
        options.httpSeconds = positive(name, value)
        break
      case 'prune-n':
        options.pruneN = Math.round(positive(name, value))
        break
      case 'users':
      case 'connections':
        options[name] = Math.round(positive(name, value))
        break
      case 'http-sessions':
        options.httpSessions = Math.round(Number(value)) || 0
        break
      case 'out':
        options.out = String(value)
        break
      default:
        throw new Error(`unknown flag --${name}\n${USAGE}`)
    }
  }
  return options
}

module.exports = { parseArgs, USAGE }
