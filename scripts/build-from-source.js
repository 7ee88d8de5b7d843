#!/usr/bin/env node
'use strict'

// Builds the native addon from the Rust sources shipped in the package, for platforms
// without a prebuilt binary (or when the platform package is missing): `cargo build
// --release`, then the cdylib is copied to the name the generated loader (binding.js)
// tries first, express-sqlite-native.<platform>.node, in the package folder. Nothing is
// downloaded except crates from crates.io, by cargo, at the versions of Cargo.lock.
//
//   npx express-sqlite-native-build       build, unless a binary already loads
//     --force                             build even if a binary loads
//     --keep-target                       keep cargo's target/ folder (inside node_modules
//                                         it is removed: hundreds of MB of intermediates)
//     --if-needed                         the install script's mode (also when npm runs this
//                                         as install/postinstall): exits 0 at once when a
//                                         binary loads, does nothing in a development
//                                         checkout (a folder not under node_modules)
//
// Self-contained: the published package ships this file alone from scripts/.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const PACKAGE = 'express-sqlite-native'
const MIN_RUST = '1.89' // rusqlite 0.42's rust-version
const root = path.join(__dirname, '..')

/** The targets published as platform packages (package.json "napi".targets, npm/<platform>/). */
const PREBUILT = [
  'linux-x64-gnu',
  'linux-x64-musl',
  'linux-arm64-gnu',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
]

const args = new Set(process.argv.slice(2))
const lifecycle = process.env.npm_lifecycle_event
const ifNeeded = args.has('--if-needed') || lifecycle === 'install' || lifecycle === 'postinstall'
const force = args.has('--force')
const keepTarget = args.has('--keep-target')
const installed = root.split(path.sep).includes('node_modules')

const log = (message) => console.error(`${PACKAGE}: ${message}`)

function fail(message) {
  console.error(`\n${PACKAGE}: ${message}\n`)
  process.exit(1)
}

/** The loader's musl test: /usr/bin/ldd mentions musl, else the process report has no glibc. */
function isMusl() {
  if (process.platform !== 'linux') return false
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    // no ldd: the process report, as the loader does
  }
  if (!process.report || typeof process.report.getReport !== 'function') return false
  process.report.excludeNetwork = true
  const report = process.report.getReport()
  if (!report || (report.header && report.header.glibcVersionRuntime)) return false
  return Array.isArray(report.sharedObjects) && report.sharedObjects.some((f) => /libc\.musl-|ld-musl-/.test(f))
}

/**
 * napi-rs' platformArchABI for this process, exactly as binding.js names its files and
 * packages; undefined where binding.js has no entry for the platform.
 */
function targetSuffix() {
  const { platform, arch } = process
  const musl = isMusl()
  switch (platform) {
    case 'linux':
      if (['x64', 'arm64', 'riscv64', 'loong64'].includes(arch)) return `linux-${arch}-${musl ? 'musl' : 'gnu'}`
      if (arch === 'arm') return musl ? 'linux-arm-musleabihf' : 'linux-arm-gnueabihf'
      return arch === 'ppc64' || arch === 's390x' ? `linux-${arch}-gnu` : undefined
    case 'darwin':
      return ['x64', 'arm64'].includes(arch) ? `darwin-${arch}` : undefined
    case 'win32': {
      const v = (process.config && process.config.variables) || {}
      if (arch === 'x64') return v.shlib_suffix === 'dll.a' || v.node_target_type === 'shared_library' ? 'win32-x64-gnu' : 'win32-x64-msvc'
      return ['ia32', 'arm64'].includes(arch) ? `win32-${arch}-msvc` : undefined
    }
    case 'freebsd':
      return ['x64', 'arm64', 'ppc64'].includes(arch) ? `freebsd-${arch}` : undefined
    case 'android':
      return arch === 'arm64' ? 'android-arm64' : arch === 'arm' ? 'android-arm-eabi' : undefined
    case 'openharmony':
      return ['arm64', 'x64', 'arm'].includes(arch) ? `openharmony-${arch}` : undefined
    default:
      return undefined
  }
}

const suffix = targetSuffix()
const where = suffix || `${process.platform}-${process.arch}${isMusl() ? '-musl' : ''}`

/** True when the loader finds a binary, else the error it gave. */
function bindingLoads() {
  try {
    require(path.join(root, 'binding.js'))
    return true
  } catch (error) {
    return error
  }
}

function isFile(file) {
  try {
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/** cargo from $CARGO or PATH. */
function findCargo() {
  const exe = process.platform === 'win32' ? 'cargo.exe' : 'cargo'
  const candidates = []
  if (process.env.CARGO) candidates.push(process.env.CARGO)
  for (const dir of (process.env.PATH || '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, exe))
  for (const candidate of candidates) {
    if (!isFile(candidate)) continue
    const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' })
    if (probe.status === 0) return { cargo: candidate, version: probe.stdout.trim() }
  }
  return undefined
}

/** Why there is no binary: a missing optional dependency, or no prebuilt for this platform. */
function whyNoBinary() {
  if (suffix && PREBUILT.includes(suffix)) {
    return [
      `A prebuilt binary exists for ${where}, in the optional dependency ${PACKAGE}-${suffix}, which is not`,
      'installed: install without --omit=optional / --no-optional; if the lock file was made on another',
      'platform, delete node_modules and package-lock.json and install again (https://github.com/npm/cli/issues/4828).',
      'Or build from source as below.',
    ].join('\n')
  }
  return `No prebuilt binary is published for ${where} (prebuilt: ${PREBUILT.join(', ')}): it is built from source.`
}

function noCargoMessage() {
  const rustupCargo = path.join(process.env.CARGO_HOME || path.join(os.homedir(), '.cargo'), 'bin')
  const offPath = isFile(path.join(rustupCargo, process.platform === 'win32' ? 'cargo.exe' : 'cargo'))
  return [
    `no native binary for ${where} could be loaded, and cargo was not found on PATH to build one from source.`,
    whyNoBinary(),
    '',
    ...(offPath ? [`cargo is in ${rustupCargo}, which is not on PATH: add it (\`. "$HOME/.cargo/env"\`), or:`] : []),
    `Install a Rust toolchain (${MIN_RUST} or newer) with rustup, https://rustup.rs:`,
    "  Linux, macOS:  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh",
    '  Windows:       rustup-init.exe from https://rustup.rs, with Visual Studio Build Tools',
    '                 ("Desktop development with C++")',
    'and a C compiler for the bundled SQLite:',
    '  Debian/Ubuntu: apt-get install build-essential    Alpine: apk add build-base',
    '  Fedora/RHEL:   dnf install gcc make              macOS:  xcode-select --install',
    'then run `npx express-sqlite-native-build` in your project',
    '(or `node node_modules/express-sqlite-native/scripts/build-from-source.js`), or install again.',
  ].join('\n')
}

/** The cdylib cargo reports in its JSON messages (so CARGO_TARGET_DIR and build.target are honoured). */
function builtLibrary(stdout) {
  let library
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    let message
    try {
      message = JSON.parse(line)
    } catch {
      continue
    }
    if (message.reason !== 'compiler-artifact' || !message.target) continue
    if (message.target.name !== 'express_sqlite_native' || !message.target.kind.includes('cdylib')) continue
    library = message.filenames.find((file) => /\.(so|dylib|dll)$/.test(file)) || library
  }
  return library
}

function build() {
  const found = findCargo()
  if (!found) fail(noCargoMessage())
  const { cargo, version } = found
  for (const file of ['Cargo.toml', 'Cargo.lock', 'build.rs', path.join('src', 'lib.rs')]) {
    if (!isFile(path.join(root, file))) fail(`cannot build from source: ${file} is missing from ${root}`)
  }

  log(`building the addon for ${where} from source with ${version} (about a minute)`)
  const started = Date.now()
  const result = spawnSync(
    cargo,
    [
      'build',
      '--release',
      '--locked',
      '--lib',
      '--message-format=json-render-diagnostics',
      '--manifest-path',
      path.join(root, 'Cargo.toml'),
    ],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024 },
  )
  if (result.error) fail(`could not run ${cargo}: ${result.error.message}`)
  if (result.status !== 0) {
    fail(
      `cargo build failed (exit ${result.status}); its output is above.\n` +
        `Building needs Rust ${MIN_RUST} or newer (\`rustup update\`) and a C compiler for the bundled SQLite.`,
    )
  }
  const library = builtLibrary(result.stdout)
  if (!library || !isFile(library)) fail('cargo reported no express_sqlite_native cdylib; nothing to install')

  const destination = path.join(root, `${PACKAGE}.${where}.node`)
  const temporary = `${destination}.${process.pid}.tmp`
  fs.copyFileSync(library, temporary)
  fs.renameSync(temporary, destination)
  log(`built ${path.basename(destination)} in ${Math.round((Date.now() - started) / 1000)} s`)

  // Where the loader has no entry for the platform, it loads the file this variable names.
  const extraEnv = suffix ? {} : { NAPI_RS_NATIVE_LIBRARY_PATH: destination }
  const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(root, 'binding.js'))})`], {
    env: { ...process.env, ...extraEnv },
    encoding: 'utf8',
  })
  if (check.status !== 0) {
    fail(`the library built, but Node (${process.arch}) cannot load it; is cargo's default target ${process.arch}?\n${check.stderr}`)
  }
  if (!suffix) log(`the loader has no entry for ${where}: start your app with NAPI_RS_NATIVE_LIBRARY_PATH=${destination}`)

  const targetDir = path.join(root, 'target')
  if (installed && !keepTarget && !process.env.CARGO_TARGET_DIR && library.startsWith(targetDir + path.sep)) {
    fs.rmSync(targetDir, { recursive: true, force: true })
  }
}

function main() {
  const loads = bindingLoads()
  if (ifNeeded) {
    if (loads === true) return // the prebuilt platform package (or an earlier build) loads
    if (!installed) {
      log('development checkout without a binary yet: `npm run build` makes one (napi build)')
      return
    }
    log(`no prebuilt binary loads for ${where}`)
  } else if (loads === true && !force) {
    log('a native binary already loads; pass --force to build from source anyway')
    return
  }
  build()
}

main()
