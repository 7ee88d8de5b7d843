import cjs from './index.js'

export const { SQLiteStore, Database } = cjs
export default SQLiteStore
