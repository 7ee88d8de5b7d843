'use strict'

// Runs one unit of work in a fresh Node process (worker.js, http-app.js) and talks to it
// over IPC. A fresh process per store keeps RSS, the V8 heap, native allocations and
// background threads of one store out of the next store's numbers.

const { fork } = require('node:child_process')

/** Starts `script`; resolves with the child and a queue of the messages it sends. */
function startChild(script, { env = {}, execArgv = ['--expose-gc'] } = {}) {
  const child = fork(script, [], {
    env: { ...process.env, ...env },
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const waiting = []
  const queued = []
  let exited = null
  child.on('message', (message) => (waiting.length ? waiting.shift().resolve(message) : queued.push(message)))
  child.on('exit', (code, signal) => {
    exited = new Error(`${script} exited (${signal ?? `code ${code}`}) before answering`)
    for (const w of waiting.splice(0)) w.reject(exited)
  })
  return {
    child,
    send: (message) => child.send(message),
    /** The next message from the child (or a rejection if it dies first). */
    next() {
      if (queued.length) return Promise.resolve(queued.shift())
      if (exited) return Promise.reject(exited)
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }))
    },
    exited: () => (exited || child.exitCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r))),
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}

/** Sends one request to a fresh `script` process and returns its single answer. */
async function runInChild(script, request, options) {
  const worker = startChild(script, options)
  try {
    worker.send(request)
    const answer = await worker.next()
    if (!answer.ok) throw new Error(answer.error)
    return answer.result
  } finally {
    await Promise.race([worker.exited(), new Promise((r) => setTimeout(r, 5000).unref())])
    worker.kill()
  }
}

module.exports = { startChild, runInChild }
