import { SessionData, Store } from 'express-session'

/** Callback with only the error argument (`undefined` on success). */
export type ErrorOnlyCallback = (error?: unknown) => void

/** express-session's SessionData with the session id, as `all` returns it. */
export interface SessionDataWithId extends SessionData {
  id: string
}

/** The structural part of a better-sqlite3 Database that the store recognises. */
export interface BetterSqlite3Like {
  readonly name: string
  readonly memory: boolean
  readonly readonly: boolean
  readonly open: boolean
  prepare(source: string): unknown
  pragma(source: string, options?: unknown): unknown
}

/** A file path (or ":memory:"), a serialized database, or an open database handle. */
export type StoreDatabase = string | Buffer | Uint8Array | Database | BetterSqlite3Like

export interface DatabaseOptions {
  /** Open read-only: reads work, writes fail with SQLITE_READONLY. Default false. */
  readonly?: boolean
  /** A missing file (or directory) is an error instead of being created. Default false. */
  fileMustExist?: boolean
  /**
   * How long to wait for another connection's lock, in ms; on an rqlite cluster, how long
   * one call may take across every node and retry before it fails. Default 5000.
   */
  timeout?: number
  /** Use WAL journal mode for a file database. Default true. */
  wal?: boolean
  /** Durability of commits: NORMAL (default with WAL) or FULL (survives power loss). */
  synchronous?: 'NORMAL' | 'FULL'
  /** MiB of sessions kept in memory to answer reads without SQLite (WAL files); 0 turns it off. Default 8 (about 13,000 sessions of 0.5 KB). */
  cacheSize?: number
  /**
   * rqlite cluster only: how fresh reads are. "weak" (default): the leader answers, so a
   * session written through any node is read back from any node; "linearizable" and
   * "strong" also survive a leader change at that instant, at a higher cost; "none":
   * the node asked answers from its own copy, which may lag.
   */
  consistency?: 'none' | 'weak' | 'linearizable' | 'strong'
  /** rqlite cluster only: basic-auth user (instead of user:password@ in the address). */
  username?: string
  /** rqlite cluster only: basic-auth password. */
  password?: string
  /** rqlite cluster only (rqlites://): PEM certificates to trust instead of the Mozilla roots built in. */
  ca?: string | Buffer
}

/**
 * An rqlite cluster: `rqlite://[user:password@]host:port[,host:port...]`, or
 * `rqlites://...` for https. List every node: calls go to whichever answers.
 */
export type ClusterAddress = `rqlite://${string}` | `rqlites://${string}`

export interface StoreOptions {
  /**
   * Table the sessions are kept in; any non-empty name without NUL or unpaired surrogates,
   * quoted safely, except express_sqlite_native_leases and sqlite_*. ASCII case does not
   * matter, as in SQLite. Default "Sessions".
   */
  tableName?: string
  /** WAL journal mode for a file the store opens. Default true. */
  wal?: boolean
  /** Options for the database the store opens. */
  databaseOptions?: DatabaseOptions
  /** Lifetime in seconds when the cookie sets none, or a function of the session. Default 86400. */
  ttl?: number | ((session: SessionData) => number)
  /** A touch within this many seconds of the last write answers 'OK' without writing. Default 0. */
  touchAfter?: number
  /** touch never writes. Default false. */
  disableTouch?: boolean
  /** Absolute lifetime in seconds since creation; touch cannot extend past it. Default none. */
  maxLifetime?: number
  /** Larger serialized sessions are refused with ERR_SESSION_TOO_LARGE. Default 1 MiB. */
  maxSessionBytes?: number
  /** The user a session belongs to, stored in the built-in, indexed user_key column. Default none. */
  userKey?: (session: SessionData) => string | number | null | undefined
  /** Durability of commits for a database the store opens. */
  synchronous?: 'NORMAL' | 'FULL'
  /** Seconds between background prunes of expired rows (±50 % jitter), or false. Default 900. */
  pruneInterval?: number | false
  /** Create (or add missing columns to) the table. false: a missing table is an error. Default true. */
  createTable?: boolean
  /** Columns of your own, filled on every set from extendDefaultFields. */
  extraColumns?: Record<string, 'TEXT' | 'INTEGER' | 'REAL' | 'NUMERIC' | 'BLOB'>
  /** Values for extraColumns, computed from the session on every set (connect-session-sequelize's name). */
  extendDefaultFields?: (
    defaults: { data: string; expires: Date },
    session: SessionData,
  ) => Record<string, string | number | boolean | Date | null | undefined>
  /** Take over the live sessions of another store's table in the same file, once. */
  importFrom?:
    | 'connect-session-knex'
    | 'connect-session-sequelize'
    | { store: 'connect-session-knex' | 'connect-session-sequelize'; table?: string; sidColumn?: string }
  /** connect-session-knex's name for createTable. */
  createtable?: boolean
  /** connect-session-knex's name (before v5) for pruneInterval, in milliseconds; false: no pruning. */
  clearInterval?: number | false
  /** connect-session-knex v5's name for pruneInterval, in milliseconds; 0, a negative number or false: no pruning. */
  cleanupInterval?: number | false
  /** connect-session-sequelize's name for pruneInterval, in milliseconds; 0, a negative number or false: no pruning. */
  checkExpirationInterval?: number | false
  /** connect-session-sequelize's name for ttl, in milliseconds. */
  expiration?: number
}

/** An error from the store: SQLite's code name (SQLITE_BUSY, ...) or one of ours (ERR_...). */
export interface StoreError extends Error {
  code: string
}

/** What `stats` reports. */
export interface StoreStats {
  /** Live sessions. */
  sessions: number
  /** Expired rows not pruned yet (invisible to every method). */
  expired: number
  /** Size of the database file and of its WAL, in bytes (0 in memory). */
  fileBytes: number
  walBytes: number
  /** Prunes run and rows they deleted since the database was opened. */
  pruneRuns: number
  rowsPruned: number
  /** Prunes skipped because another process was pruning the same table. */
  prunesSkipped: number
  /** Scheduled prunes that failed (each also emitted as 'error' when listened to). */
  pruneErrors: number
  /** Touches answered without a write because of touchAfter or disableTouch. */
  touchesSkipped: number
  /** Times a connection waited for another connection's lock. */
  busyRetries: number
  /** WAL checkpoints run by the background thread. */
  checkpoints: number
  /** Reads answered from the session cache, without a SQLite transaction (WAL files only). */
  cachedReads: number
}

/** An SQLite database that one or several stores can share. */
export declare class Database {
  constructor(database: string | Buffer | Uint8Array, options?: DatabaseOptions)
  readonly name: string
  readonly memory: boolean
  readonly readonly: boolean
  readonly open: boolean
  /** The whole database as a serialized SQLite image. */
  serialize(): Buffer
  /**
   * Finishes queued writes, checkpoints and closes, off the event loop; the callback or
   * Promise says when the file is closed. Idempotent.
   */
  close(callback: ErrorOnlyCallback): void
  close(): Promise<void>
}

export declare class SQLiteStore extends Store {
  constructor(database: StoreDatabase, storeOptions?: StoreOptions)
  readonly tableName: string
  readonly database: Database

  get(sid: string, callback: (error: unknown, session?: SessionData | null) => void): void
  get(sid: string): Promise<SessionData | null>

  set(sid: string, session: SessionData, callback: ErrorOnlyCallback): void
  set(sid: string, session: SessionData): Promise<void>

  destroy(sid: string, callback: (error: unknown, count?: number) => void): void
  destroy(sid: string): Promise<number>

  touch(sid: string, session: SessionData, callback: (error: unknown, result?: 'OK' | 'EXPIRED') => void): void
  touch(sid: string, session: SessionData): Promise<'OK' | 'EXPIRED'>

  all(callback: (error: unknown, sessions?: SessionDataWithId[]) => void): void
  all(): Promise<SessionDataWithId[]>

  ids(callback: (error: unknown, ids?: string[]) => void): void
  ids(): Promise<string[]>

  length(callback: (error: unknown, length?: number) => void): void
  length(): Promise<number>

  clear(callback: (error: unknown, count?: number) => void): void
  clear(): Promise<number>

  /** The live session ids of a user (see the userKey option). */
  idsByUser(key: string | number, callback: (error: unknown, ids?: string[]) => void): void
  idsByUser(key: string | number): Promise<string[]>

  /** Ends every live session of a user, or all but `except`; gives the number ended. */
  destroyByUser(key: string | number, callback: (error: unknown, count?: number) => void): void
  destroyByUser(
    key: string | number,
    options: { except?: string },
    callback: (error: unknown, count?: number) => void,
  ): void
  destroyByUser(key: string | number, options?: { except?: string }): Promise<number>

  /** Counts, sizes and counters; cheap enough to poll every few seconds. */
  stats(callback: (error: unknown, stats?: StoreStats) => void): void
  stats(): Promise<StoreStats>

  /** The whole database as a serialized SQLite image. */
  serialize(): Buffer

  /**
   * Writes a consistent copy of the live database to a file, off the event loop (on an
   * rqlite cluster: the cluster's database, from rqlite's backup endpoint).
   */
  backup(path: string, callback: ErrorOnlyCallback): void
  backup(path: string): Promise<void>

  /**
   * Copies every live session, with its expiry, into another store (a file into a
   * cluster or back); the count copied. Sessions of the same id there are overwritten.
   */
  copyTo(target: SQLiteStore, callback: (error: unknown, copied?: number) => void): void
  copyTo(target: SQLiteStore): Promise<number>

  /**
   * connect-session-sequelize's sync(): creates the table (with any column or index it
   * lacks) if it is missing, for example dropped since the store opened, whatever
   * `createTable` says. A store with `createTable: false` cannot be constructed on a
   * missing table in the first place: its constructor throws ERR_NO_TABLE. Rejects
   * with ERR_NO_TABLE on a read-only database.
   */
  sync(): Promise<void>

  /** Stops background pruning (connect-session-knex's name). */
  stopDbCleanup(): void

  /** Stops background pruning (connect-session-sequelize's name for stopDbCleanup). */
  stopExpiringSessions(): void

  /** Deletes expired sessions now, on a background thread. */
  prune(callback: (error: unknown, deleted?: number) => void): void
  prune(): Promise<number>

  /** Deletes expired sessions now (connect-session-sequelize's name for prune). */
  clearExpiredSessions(callback: (error: unknown, deleted?: number) => void): void
  clearExpiredSessions(): Promise<number>

  /**
   * Stops the store; queued writes still complete. Closes the database (if the store
   * opened it) off the event loop: the callback or Promise says when the file is closed.
   */
  close(callback: ErrorOnlyCallback): void
  close(): Promise<void>
}

export default SQLiteStore
