'use strict'

// The JS side of one open database: runs reads and quiet-time writes on this thread,
// queues the rest to the native writer thread, and calls every completion exactly once,
// always after the method that started it has returned.

const { NativeDatabase, Op } = require('./native')
const { fromFailure, closedError } = require('./errors')
const { rethrowLater } = require('./callbacks')

/** Jobs that change sessions other than their `sid`: a touch never skips past them. */
const BULK_CHANGES = new Set([Op.Clear, Op.DestroyByUser])

/**
 * Most writes of one turn committed on this thread. Each costs ~10 µs in a shared
 * transaction, so this bounds the event loop's wait to well under a millisecond; more go
 * to the writer thread, whose group commit then runs beside the event loop. Measured on
 * 2 cores with the load generator beside the server, committing here beat handing over
 * to the writer thread (its wake-ups and the trip back cost more than the commit) by
 * 10-25 % in requests per second, and at 64 touches in flight 110k against 80k ops/s.
 */
const MAX_WRITES_ON_THIS_THREAD = 64

/** See Core#defer. */
const MAX_TICKS_IN_A_ROW = 1000

/**
 * Whether a Core's setImmediate callback, or a flush scheduled from one, is running: the
 * event loop is then in its check phase, its I/O callbacks done (see Core#defer). One
 * for every store, as the event loop is.
 */
let inCheckPhase = false

/** Errors after which the database cannot be trusted to work: stores report 'disconnect'. */
const FATAL_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'ERR_DATABASE_MOVED'])

/** Tickets the native side uses for completions nobody queued (src/worker.rs). */
const BACKGROUND_TICKET = 0
/** A cluster stopped answering (a failure) or answers again (src/cluster/mod.rs). */
const CONNECTION_TICKET = 0xfffffffe
/** The ticket of a close nobody waits for (a database closed by the finalizer). */
const UNWATCHED_TICKET = 0xffffffff

/**
 * Cores with work queued to a native thread: held here so that a store dropped with
 * writes in flight still gets their callbacks. Otherwise only the app holds a Core:
 * the native side reaches it through a WeakRef, so a store dropped without close() can
 * be collected, and the finalizer below then closes its database (threads and files).
 */
const busy = new Set()
const finalizer = new FinalizationRegistry((native) => {
  try {
    native.close(UNWATCHED_TICKET)
  } catch {
    // Already closed.
  }
})

class Core {
  #native
  /** ticket -> completion, for work queued to the writer thread */
  #queued = new Map()
  #nextTicket = 1
  /** completions of work done on this thread, flat: [done, error, value, ...] */
  #ready = []
  #flushScheduled = false
  /** flushes run from process.nextTick since the event loop last turned */
  #ticksInARow = 0
  #closed = false
  /**
   * Writes of this event-loop turn, not yet run, and their completions. Requests that
   * arrive together are separate callbacks of one turn, so a write waits for the turn's
   * end (setImmediate) and commits with the others.
   */
  #pending = []
  #pendingDone = []
  #runScheduled = false
  /** listeners told about errors that make the database unusable */
  #fatalListeners = new Set()
  /** listeners told about failures of background work (a scheduled prune) */
  #backgroundListeners = new Set()
  /** listeners told when a cluster stops or starts answering: (error | undefined) */
  #connectionListeners = new Set()

  /** `location`: a path, a Buffer image, or null for a private in-memory database. */
  constructor(location, options) {
    const self = new WeakRef(this)
    this.#native = new NativeDatabase(location, options, (tickets, outcomes) => self.deref()?.#complete(tickets, outcomes))
    finalizer.register(this, this.#native, this)
  }

  get closed() {
    return this.#closed
  }

  get memory() {
    return this.#native.memory
  }

  openTable(name, createTable, defaultTtlMs, maxLifetimeMs, pruneIntervalMs, extraColumns, importFrom) {
    return this.#native.openTable(name, createTable, defaultTtlMs, maxLifetimeMs, pruneIntervalMs, extraColumns, importFrom)
  }

  /** Creates a table handle's table again if it has gone (see SQLiteStore#sync). */
  syncTable(table) {
    if (this.#closed) throw closedError()
    this.#native.syncTable(table)
  }

  stopPruning(table) {
    if (!this.#closed) this.#native.stopPruning(table)
  }

  onFatal(listener) {
    this.#fatalListeners.add(listener)
    return () => this.#fatalListeners.delete(listener)
  }

  onBackgroundError(listener) {
    this.#backgroundListeners.add(listener)
    return () => this.#backgroundListeners.delete(listener)
  }

  onConnection(listener) {
    this.#connectionListeners.add(listener)
    return () => this.#connectionListeners.delete(listener)
  }

  #noticed(error) {
    if (FATAL_CODES.has(error.code)) for (const listener of this.#fatalListeners) listener(error)
    return error
  }

  /**
   * A session's `[json, expires]` or null, to `then(error, entry)`. Here and now where
   * the engine can (a local read costs a few µs, a trip to another thread far more;
   * `then` is then called before this returns), else sent with this turn's jobs
   * (a cluster: every read is a network hop).
   */
  get(table, sid, then) {
    if (this.#closed) return then(closedError())
    let found
    try {
      found = this.#native.get(table, sid)
    } catch (error) {
      return then(this.#noticed(error))
    }
    // Only a queued job can answer (a cluster): it joins this turn's jobs, so that the
    // reads and writes of one turn reach the engine together. (The job object is made
    // only then: a local get is a few µs, and this is its hot path.)
    if (found === undefined) return this.write(then, { table, op: Op.Get, sid })
    then(undefined, found)
  }

  /** When the session was last written (epoch ms) or null, to `then`, as `get`. */
  lastWrite(table, sid, then) {
    if (this.#closed) return then(closedError())
    let found
    try {
      found = this.#native.lastWrite(table, sid)
    } catch (error) {
      return then(this.#noticed(error))
    }
    if (found === undefined) return this.write(then, { table, op: Op.LastWrite, sid })
    then(undefined, found)
  }

  /**
   * Whether a touch would change nothing a client can tell (the native side knows the
   * stored expiry from its cache). Never while a write of this turn or one queued to the
   * writer thread could concern the same session: those are not in the cache yet.
   */
  touchIsCurrent(table, sid, expires) {
    if (this.#closed || this.#queued.size > 0 || this.#pending.length > MAX_WRITES_ON_THIS_THREAD) return false
    for (const job of this.#pending) {
      if (BULK_CHANGES.has(job.op) || (job.sid === sid && job.table === table)) return false
    }
    return this.#native.touchIsCurrent(table, sid, expires)
  }

  /** Counters and file sizes; no SQL. */
  counters() {
    if (this.#closed) throw closedError()
    return this.#native.counters()
  }

  /**
   * A change (a job: { table, op, sid, data, expires, key, extras }; on a cluster also a
   * point read), committed with the other writes of this event-loop turn: on this thread when they are few and the
   * writer thread is idle (a hop to another thread costs more than a small commit),
   * else by the writer thread's group commit.
   */
  write(done, job) {
    if (this.#closed) return this.defer(done, closedError())
    // The writer thread has work: join its queue, behind it.
    if (this.#queued.size > 0) return this.queue(done, job)
    this.#pending.push(job)
    this.#pendingDone.push(done)
    if (!this.#runScheduled) {
      this.#runScheduled = true
      setImmediate(this.#runPending)
    }
  }

  #runPending = () => {
    this.#runScheduled = false
    const jobs = this.#pending
    const dones = this.#pendingDone
    if (jobs.length === 0) return
    this.#pending = []
    this.#pendingDone = []
    inCheckPhase = true
    try {
      this.#runNowOrQueue(dones, jobs)
    } finally {
      inCheckPhase = false
    }
  }

  /**
   * Runs jobs here, in one transaction, when nothing is queued and they are few; the
   * native side says when they cannot run without waiting (a lock held elsewhere, the
   * WAL due for a restart), and then they go to the writer thread.
   */
  #runNowOrQueue(dones, jobs) {
    if (this.#closed || this.#queued.size > 0 || jobs.length > MAX_WRITES_ON_THIS_THREAD) {
      return this.#queueJobs(dones, jobs)
    }
    let outcomes
    try {
      outcomes = this.#native.run(jobs)
    } catch (error) {
      for (const done of dones) this.defer(done, this.#noticed(error))
      return
    }
    if (outcomes === null) return this.#queueJobs(dones, jobs)
    for (let i = 0; i < dones.length; i++) {
      const error = this.#failure(outcomes[i])
      this.defer(dones[i], error, error === undefined ? outcomes[i] : undefined)
    }
  }

  /** A native outcome is a count, strings, or a failure `{ code, message }`: the Error. */
  #failure(outcome) {
    if (outcome === null || typeof outcome !== 'object' || Array.isArray(outcome)) return undefined
    return this.#noticed(fromFailure(outcome))
  }

  #queueJobs(dones, jobs) {
    if (this.#closed) {
      for (const done of dones) this.defer(done, closedError())
      return
    }
    const tickets = dones.map(() => this.#nextTicketNumber())
    try {
      this.#native.queue(tickets, jobs)
    } catch (error) {
      for (const done of dones) this.defer(done, error)
      return
    }
    for (let i = 0; i < dones.length; i++) this.#track(tickets[i], dones[i])
  }

  /** Writes of this turn not yet run go to the writer thread now, ahead of what follows. */
  #handOverPending() {
    if (this.#pending.length === 0) return
    const [jobs, dones] = [this.#pending, this.#pendingDone]
    this.#pending = []
    this.#pendingDone = []
    this.#queueJobs(dones, jobs)
  }

  /**
   * A count of rows (length, expired): here and now when no write of this process is
   * pending or queued, so it sees every write issued before it without the trip to the
   * writer thread and back (~60 µs, most of a count's cost); else behind those writes.
   */
  count(done, job) {
    if (this.#closed) return this.defer(done, closedError())
    if (this.#queued.size > 0 || this.#pending.length > 0) return this.queue(done, job)
    this.#runNowOrQueue([done], [job])
  }

  /** Work for the writer thread (the other bulk reads always go there, in order with writes). */
  queue(done, job) {
    if (this.#closed) return this.defer(done, closedError())
    this.#handOverPending()
    this.#queueJobs([done], [job])
  }

  /** One prune now, on the upkeep thread; `done` gets the number of rows deleted. */
  prune(done, table) {
    this.#send(done, (ticket) => this.#native.prune(ticket, table))
  }

  /** A consistent copy of the live database written to `path`, off this thread. */
  backup(done, path) {
    this.#send(done, (ticket) => this.#native.backup(ticket, path))
  }

  #send(done, submit) {
    if (this.#closed) return this.defer(done, closedError())
    this.#handOverPending()
    const ticket = this.#nextTicketNumber()
    try {
      submit(ticket)
    } catch (error) {
      return this.defer(done, error)
    }
    this.#track(ticket, done)
  }

  /** Waits for a native completion under `ticket`; Node stays alive meanwhile. */
  #track(ticket, done) {
    if (this.#queued.size === 0) {
      this.#native.keepAlive(true)
      busy.add(this)
    }
    this.#queued.set(ticket, done)
  }

  #nextTicketNumber() {
    const ticket = this.#nextTicket
    this.#nextTicket = ticket >= 0xfffffff0 ? 1 : ticket + 1
    return ticket
  }

  /**
   * Calls `done(error, value)` after the current call stack, batched, in the event loop's
   * check phase. Called while the loop is still running I/O callbacks (an HTTP request
   * just parsed), the delivery waits for setImmediate: the requests that arrived together
   * are then all answered together, after the last of them is read, as with MemoryStore.
   * Answering each one from inside its own socket read cost Node 24 a third more CPU per
   * request through Express (more loop turns, and a wake-up of the client per response).
   * Called in the check phase already (after a commit, or from an earlier delivery), it
   * runs from process.nextTick, without waiting for another turn; after MAX_TICKS_IN_A_ROW
   * such flushes without the loop turning, the next waits for setImmediate, so that a
   * caller looping on the store cannot starve I/O.
   */
  defer(done, error, value) {
    this.#ready.push(done, error, value)
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    if (inCheckPhase && this.#ticksInARow < MAX_TICKS_IN_A_ROW) {
      if (this.#ticksInARow === 0) setImmediate(this.#loopTurned)
      this.#ticksInARow++
      process.nextTick(this.#flush)
    } else {
      setImmediate(this.#flush)
    }
  }

  #loopTurned = () => {
    this.#ticksInARow = 0
  }

  /** Runs from setImmediate, or from process.nextTick scheduled in the check phase. */
  #flush = () => {
    this.#flushScheduled = false
    const ready = this.#ready
    this.#ready = []
    inCheckPhase = true
    try {
      for (let i = 0; i < ready.length; i += 3) invoke(ready[i], ready[i + 1], ready[i + 2])
    } finally {
      inCheckPhase = false
    }
  }

  #complete(tickets, outcomes) {
    for (let i = 0; i < tickets.length; i++) {
      if (tickets[i] === BACKGROUND_TICKET) {
        const error = fromFailure(outcomes[i])
        for (const listener of this.#backgroundListeners) listener(error)
        continue
      }
      if (tickets[i] === CONNECTION_TICKET) {
        const error = this.#failure(outcomes[i])
        for (const listener of this.#connectionListeners) listener(error)
        continue
      }
      const done = this.#queued.get(tickets[i])
      if (done === undefined) continue
      this.#queued.delete(tickets[i])
      const error = this.#failure(outcomes[i])
      invoke(done, error, error === undefined ? outcomes[i] : undefined)
    }
    this.#releaseIfIdle()
  }

  /** Nothing outstanding: Node may exit, and the Core may be collected. */
  #releaseIfIdle() {
    if (this.#queued.size > 0) return
    this.#native.keepAlive(false)
    busy.delete(this)
  }

  serialize() {
    if (this.#closed) throw closedError()
    return this.#native.serialize()
  }

  /**
   * Runs what is queued, checkpoints and closes, on a native thread: the event loop
   * never waits for it. Queued completions still arrive, then `done(error)`.
   * Closing again completes at once.
   */
  close(done) {
    if (this.#closed) return this.defer(done)
    this.#handOverPending()
    this.#closed = true
    finalizer.unregister(this)
    const ticket = this.#nextTicketNumber()
    // Tracked (and Node kept alive) before the native side starts: its closing thread
    // may deliver and release the completion function before this line returns, and a
    // delivery left on a released function nobody refs would let Node exit first.
    this.#track(ticket, (error) => done(error))
    try {
      this.#native.close(ticket)
    } catch (error) {
      this.#queued.delete(ticket)
      this.#releaseIfIdle()
      this.defer(done, error)
    }
  }
}

function invoke(done, error, value) {
  try {
    done(error, value)
  } catch (thrown) {
    rethrowLater(thrown)
  }
}

module.exports = { Core }
