// A real TimescaleDB (the PGlite WebAssembly build with the timescaledb extension),
// served on a PostgreSQL-wire TCP port so psycopg can connect, for tests of citybrain's
// TimescaleDB path on machines without Docker.
//
//   CITYBRAIN_TSDB_PORT=5499 CITYBRAIN_TSDB_DATA_DIR=memory:// node server.mjs
//
// Limits (of the WebAssembly build, not of TimescaleDB): one query at a time (connections
// are queued), any password is accepted, `COPY ... FROM STDIN` drops the connection.
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import net from 'node:net'

const host = process.env.CITYBRAIN_TSDB_HOST || '127.0.0.1'
const port = Number(process.env.CITYBRAIN_TSDB_PORT || 5499)
const dataDir = process.env.CITYBRAIN_TSDB_DATA_DIR || process.argv[2] || 'memory://'

function portFree(p) {
  return new Promise((resolve) => {
    const probe = net.createServer()
    probe.once('error', () => resolve(false))
    probe.once('listening', () => probe.close(() => resolve(true)))
    probe.listen(p, host)
  })
}

if (!(await portFree(port))) {
  console.error(`citybrain-tsdb: port ${host}:${port} is already in use`)
  process.exit(2)
}

const started = Date.now()
const db = await PGlite.create({ dataDir, extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
const version = (await db.query(
  "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
)).rows[0].extversion

const server = new PGLiteSocketServer({ db, host, port, maxConnections: 16, debug: process.env.CITYBRAIN_TSDB_DEBUG === "1" })
await server.start()
console.log(
  `citybrain-tsdb ready on ${host}:${port} (TimescaleDB ${version}, data ${dataDir}, ` +
    `${Date.now() - started} ms)`,
)

let stopping = false
async function shutdown(signal) {
  if (stopping) return
  stopping = true
  console.log(`citybrain-tsdb: ${signal}, stopping`)
  try {
    await server.stop()
    await db.close()
  } finally {
    process.exit(0)
  }
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
