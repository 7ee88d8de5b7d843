// Compiled by `tsc -p __test__/tsconfig.json` in `npm test`: the public types work with
// express-session's own, in callback and promise forms.

import session, { SessionData } from 'express-session'
import express from 'express'
import DefaultExport, {
  SQLiteStore,
  Database,
  StoreOptions,
  StoreDatabase,
  SessionDataWithId,
  ErrorOnlyCallback,
  StoreStats,
} from 'express-sqlite-native'

const options: StoreOptions = {
  tableName: 'Sessions',
  wal: true,
  databaseOptions: { fileMustExist: false, timeout: 5000, readonly: false },
  ttl: (s: SessionData) => (s.cookie.maxAge ? 60 : 3600),
  touchAfter: 60,
  maxLifetime: 7 * 86400,
  userKey: (s) => (s as SessionData & { userId?: string }).userId,
}
const knexNames: StoreOptions = { cleanupInterval: 60_000, clearInterval: undefined, createtable: true }
const sequelizeNames: StoreOptions = { checkExpirationInterval: -1, expiration: 86_400_000 }
void [knexNames, sequelizeNames]
// index.mjs and index.js (module.exports.default) both default-export the class.
const SameClass: typeof SQLiteStore = DefaultExport
const viaDefault: SQLiteStore = new DefaultExport(':memory:')
void [SameClass, viaDefault]
const sources: StoreDatabase[] = ['sessions.db', ':memory:', Buffer.alloc(0), new Database(':memory:')]
const store = new SQLiteStore(sources[0], options)
const asBaseStore: session.Store = store

const app = express()
app.use(session({ store, secret: 'x', resave: false, saveUninitialized: false }))

const done: ErrorOnlyCallback = (error) => {
  if (error) throw error
}
store.set('sid', { cookie: { originalMaxAge: 1000 } } as SessionData, done)
store.get('sid', (error, data) => {
  const maybe: SessionData | null | undefined = data
  void error
  void maybe
})
store.all((error: unknown, all?: SessionDataWithId[]) => {
  const ids: string[] | undefined = all?.map((s) => s.id)
  void ids
})
store.touch('sid', {} as SessionData, (error, result) => {
  const r: 'OK' | 'EXPIRED' | undefined = result
  void r
})

async function promises(): Promise<void> {
  const got: SessionData | null = await store.get('sid')
  await store.set('sid', got as SessionData)
  const count: number = await store.destroy('sid')
  const touched: 'OK' | 'EXPIRED' = await store.touch('sid', got as SessionData)
  const all: SessionDataWithId[] = await store.all()
  const ids: string[] = await store.ids()
  const n: number = await store.length()
  const cleared: number = await store.clear()
  await store.close()
  const image: Buffer = store.database.serialize()
  const own: Buffer = store.serialize()
  const mine: string[] = await store.idsByUser('u1')
  const ended: number = await store.destroyByUser(7, { except: 'sid' })
  const stats: StoreStats = await store.stats()
  const pruned: number = await store.prune()
  const cleared2: number = await store.clearExpiredSessions()
  store.clearExpiredSessions((error, deleted) => void [error, deleted])
  store.stopExpiringSessions()
  await store.backup('/tmp/copy.db')
  const cluster = new SQLiteStore('rqlite://127.0.0.1:4001,127.0.0.1:4003', {
    databaseOptions: { consistency: 'strong', timeout: 2000, username: 'app', password: 'secret', ca: Buffer.from('') },
  })
  const copied: number = await store.copyTo(cluster)
  store.copyTo(cluster, (error, n) => void [error, n])
  const synced: Promise<void> = store.sync()
  await synced
  void [own, mine, ended, stats.sessions, pruned, cleared2, copied]
  void [count, touched, all, ids, n, cleared, image, asBaseStore]
}
void promises
