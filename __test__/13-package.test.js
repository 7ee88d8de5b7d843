'use strict'

// What a user gets from npm: the package and this platform's binary package, packed
// as npm would publish them, installed (scripts off, so no Rust toolchain is used)
// into new apps outside the repository: a CommonJS and an ESM Express app making real
// HTTP requests, and a TypeScript consumer compiled under node16 (ESM and CommonJS) and
// bundler, whose compiled output then runs. Works on Windows too (npm through a shell).

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync, spawn, spawnSync } = require('node:child_process')
const { npmSync } = require('../scripts/runtimes')

const root = path.join(__dirname, '..')
// npm through a shell on Windows, where it is a batch file (scripts/runtimes.js).
const npm = (args, cwd) =>
  npmSync(args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'error', npm_config_fund: 'false', npm_config_audit: 'false' } })
const skip = process.env.ESN_SECONDARY_RUNTIME ? 'packaging is checked once, under the primary Node' : false

let app // the consumer folder, shared by the subtests

function packageAll(t) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-pack-'))
  const main = JSON.parse(npm(['pack', '--json', '--pack-destination', work], root))[0]
  // This platform's package, as the release workflow assembles it: npm/<platform>/ plus the built binary.
  const target = fs.readdirSync(root).find((f) => /^express-sqlite-native\..+\.node$/.test(f))
  assert.ok(target, 'a built binary is in the repository root (npm run build)')
  const platform = target.replace(/^express-sqlite-native\.|\.node$/g, '')
  const platformDir = path.join(work, 'platform')
  fs.cpSync(path.join(root, 'npm', platform), platformDir, { recursive: true })
  fs.copyFileSync(path.join(root, target), path.join(platformDir, target))
  const native = JSON.parse(npm(['pack', '--json', '--pack-destination', work], platformDir))[0]
  t.diagnostic(`main tarball ${(main.size / 1024).toFixed(1)} kB (${main.entryCount} files), ${platform} tarball ${(native.size / 1048576).toFixed(2)} MB`)
  return { work, main, native, mainFiles: main.files.map((f) => f.path) }
}

test('the main tarball holds what users need and no build artifacts', { skip }, (t) => {
  const { work, mainFiles } = packageAll(t)
  for (const needed of ['index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'lib/core.js', 'package.json', 'Cargo.toml', 'Cargo.lock', 'src/lib.rs', 'scripts/build-from-source.js']) {
    assert.ok(mainFiles.includes(needed), `${needed} is packed`)
  }
  for (const file of mainFiles) {
    assert.doesNotMatch(file, /^(target|__test__|bench|npm|node_modules|examples|\.ci|\.github)\//, `${file} is not needed by users`)
    assert.doesNotMatch(file, /\.node$/, 'binaries ship in the platform packages')
  }
  fs.rmSync(work, { recursive: true, force: true })
})

test('npm/<platform>/ holds, for every napi target, what `napi create-npm-dirs` makes of package.json', { skip }, (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-npm-dirs-'))
  fs.copyFileSync(path.join(root, 'package.json'), path.join(work, 'package.json'))
  execFileSync(process.execPath, [path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js'), 'create-npm-dirs'], { cwd: work, stdio: 'pipe' })
  const generated = fs.readdirSync(path.join(work, 'npm')).sort()
  assert.deepEqual(fs.readdirSync(path.join(root, 'npm')).sort(), generated, 'one folder per target in package.json "napi"')
  for (const platform of generated) {
    for (const file of fs.readdirSync(path.join(work, 'npm', platform))) {
      const read = (dir) => fs.readFileSync(path.join(dir, 'npm', platform, file), 'utf8').replace(/\r\n/g, '\n')
      assert.equal(read(root), read(work), `npm/${platform}/${file} is stale: run \`npx napi create-npm-dirs\``)
    }
  }
  t.diagnostic(`${generated.length} platform packages: ${generated.join(', ')}`)
  fs.rmSync(work, { recursive: true, force: true })
})

test('installed from the tarballs into a new Express app: CommonJS and ESM apps serve sessions over HTTP', { skip, timeout: 300_000 }, async (t) => {
  const { main, native, work } = packageAll(t)
  app = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-consumer-'))
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
  const expressVersion = require('express/package.json').version
  const sessionVersion = require('express-session/package.json').version
  const started = Date.now()
  npm(
    [
      'install',
      '--ignore-scripts',
      '--no-save',
      path.join(work, main.filename),
      path.join(work, native.filename),
      `express@${expressVersion}`,
      `express-session@${sessionVersion}`,
      // for the TypeScript consumer below
      '@types/express@5',
      '@types/express-session@1',
      '@types/node@20',
    ],
    app,
  )
  t.diagnostic(`install took ${Date.now() - started} ms`)
  const routes = `
    app.use(session({ store: new SQLiteStore(process.argv[2]), secret: 's', resave: false, saveUninitialized: false }))
    app.get('/login', (req, res) => { req.session.user = 'packed'; res.send('ok') })
    app.get('/me', (req, res) => res.status(req.session.user ? 200 : 401).send(String(req.session.user)))
    const server = app.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port))`
  fs.writeFileSync(
    path.join(app, 'app.cjs'),
    `const express = require('express'); const session = require('express-session');
     const { SQLiteStore } = require('express-sqlite-native'); const app = express();${routes}`,
  )
  fs.writeFileSync(
    path.join(app, 'app.mjs'),
    `import express from 'express'; import session from 'express-session';
     import { SQLiteStore } from 'express-sqlite-native'; const app = express();${routes}`,
  )
  for (const entry of ['app.cjs', 'app.mjs']) {
    const child = spawn(process.execPath, [entry, path.join(app, `${entry}.db`)], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    child.stderr.on('data', (c) => (err += c))
    const port = await new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        const match = String(chunk).match(/port (\d+)/)
        if (match) resolve(Number(match[1]))
      })
      child.on('exit', (code) => reject(new Error(`${entry} exited ${code}: ${err}`)))
    })
    const login = await fetch(`http://127.0.0.1:${port}/login`)
    const cookie = login.headers.get('set-cookie').split(';')[0]
    const me = await fetch(`http://127.0.0.1:${port}/me`, { headers: { cookie } })
    assert.equal(me.status, 200, entry)
    assert.equal(await me.text(), 'packed')
    child.kill()
  }
  // The package's files came from the tarball, not from this repository.
  assert.ok(!fs.realpathSync(path.join(app, 'node_modules', 'express-sqlite-native')).startsWith(root))
  fs.rmSync(work, { recursive: true, force: true })
})

// One consumer source, as a user writes it: the named import, express-session's types
// (with a SessionData field merged in, as its docs show), callbacks and promises. The
// @ts-expect-error lines make the test fail if the store's types were loose (any).
const CONSUMER_TS = `import session, { type SessionData } from 'express-session'
import { SQLiteStore, type StoreOptions } from 'express-sqlite-native'

declare module 'express-session' {
  interface SessionData {
    user?: string
  }
}

const options: StoreOptions = { tableName: 'Sessions', ttl: 3600 }
const store = new SQLiteStore(process.argv[2] ?? 'sessions.db', options)
const asStore: session.Store = store
export const middleware = session({ store: asStore, secret: 's', resave: false, saveUninitialized: false })

const data: SessionData = {
  cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000), httpOnly: true, path: '/' },
  user: 'typed',
}
// Type checks only, never called.
export function typeErrors(): void {
  // @ts-expect-error a session id is a string
  store.get(42)
  // @ts-expect-error the promise form gives the session, not a string
  const wrong: Promise<string> = store.get('sid')
  void wrong
}

function withCallbacks(done: (error: unknown, user?: string) => void): void {
  store.set('callback', data, (error?: unknown) => {
    if (error) return done(error)
    store.get('callback', (error: unknown, found?: SessionData | null) => done(error, found?.user))
  })
}

async function withPromises(): Promise<[string | undefined, number]> {
  await store.set('promise', data)
  const found: SessionData | null = await store.get('promise')
  const count: number = await store.length()
  return [found?.user, count]
}

withCallbacks((error, user) => {
  if (error) throw error
  withPromises().then(async ([promised, count]) => {
    await store.close()
    console.log(\`\${user} \${promised} \${count}\`)
  })
})
`

test('a TypeScript consumer compiles under node16 (an ESM .mts and a CommonJS .cts) and bundler, and its node16 output runs', { skip }, (t) => {
  assert.ok(app, 'the consumer app from the previous test exists')
  for (const file of ['consumer.mts', 'consumer.cts', 'consumer.ts']) fs.writeFileSync(path.join(app, file), CONSUMER_TS)
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const common = ['--strict', '--target', 'es2022', '--types', 'node']
  const compile = (label, args) => {
    try {
      execFileSync(process.execPath, [tsc, ...common, ...args], { cwd: app, encoding: 'utf8' })
    } catch (error) {
      assert.fail(`tsc (${label}) failed:\n${error.stdout}${error.stderr}`)
    }
    t.diagnostic(`tsc ${label}: ok`)
  }
  // node16: .mts is an ES module and .cts a CommonJS one whatever package.json says;
  // both resolve the package through its exports ("import" and "require").
  compile('--module node16 --moduleResolution node16 (consumer.mts, consumer.cts)', [
    '--module', 'node16', '--moduleResolution', 'node16', '--outDir', 'out', 'consumer.mts', 'consumer.cts',
  ])
  compile('--module esnext --moduleResolution bundler (consumer.ts)', [
    '--noEmit', '--module', 'esnext', '--moduleResolution', 'bundler', 'consumer.ts',
  ])
  // What the types promised holds at run time, through each entry point.
  for (const output of ['consumer.mjs', 'consumer.cjs']) {
    const result = spawnSync(process.execPath, [path.join('out', output), path.join(app, `${output}.db`)], { cwd: app, encoding: 'utf8' })
    assert.equal(result.status, 0, `${output}: ${result.stderr}`)
    assert.equal(result.stdout.trim(), 'typed typed 2', output)
  }
  fs.rmSync(app, { recursive: true, force: true })
})

/** npm's own script beside this Node (Windows and POSIX layouts), else in npm's global root. */
function npmCli() {
  const dir = path.dirname(process.execPath)
  const candidates = [
    path.join(dir, 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    path.join(dir, '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    path.join(npm(['root', '-g'], root).trim(), 'npm', 'bin', 'npm-cli.js'),
  ]
  const found = candidates.find((file) => fs.existsSync(file))
  assert.ok(found, `npm-cli.js is in none of ${candidates.join(', ')}`)
  return found
}

test('without a prebuilt binary and without cargo, install fails with a message that says what to install', { skip, timeout: 300_000 }, (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'esn-fallback-'))
  const main = JSON.parse(npm(['pack', '--json', '--pack-destination', work], root))[0]
  const consumer = path.join(work, 'app')
  fs.mkdirSync(consumer)
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
  // A PATH with node (and on POSIX sh, npm's script shell; Windows' cmd.exe is found
  // through ComSpec) but no cargo.
  const bin = path.join(work, 'bin')
  fs.mkdirSync(bin)
  if (process.platform === 'win32') {
    try {
      fs.linkSync(process.execPath, path.join(bin, 'node.exe'))
    } catch {
      fs.copyFileSync(process.execPath, path.join(bin, 'node.exe'))
    }
  } else {
    fs.symlinkSync(process.execPath, path.join(bin, 'node'))
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh'))
  }
  // Environment names are case-insensitive on Windows (Path): drop every spelling, and
  // $CARGO, which the build script would use before PATH.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(path|cargo)$/i.test(key)))
  const result = spawnSync(
    process.execPath,
    [npmCli(), 'install', '--no-audit', '--no-fund', '--omit=optional', '--foreground-scripts', path.join(work, main.filename)],
    { cwd: consumer, encoding: 'utf8', env: { ...env, PATH: bin, npm_config_loglevel: 'error' } },
  )
  const output = result.stdout + result.stderr
  assert.notEqual(result.status, 0, 'the install fails')
  assert.match(output, /cargo was not found/)
  assert.match(output, /Install a Rust toolchain/)
  t.diagnostic('no binary and no cargo: install stops with our message')
  fs.rmSync(work, { recursive: true, force: true })
})
