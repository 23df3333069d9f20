// A real TimescaleDB (the PGlite WebAssembly build with the timescaledb extension),
// served on a PostgreSQL-wire TCP port so psycopg can connect, for tests of citybrain's
// TimescaleDB path on machines without Docker.
//
//   node server.mjs [DATA_DIR]
//
// Environment:
//   CITYBRAIN_TSDB_DATA_DIR         data folder, or memory:// (the default; the argument wins)
//   CITYBRAIN_TSDB_PORT             TCP port (default 5499)
//   CITYBRAIN_TSDB_HOST             bind address (default 127.0.0.1)
//   CITYBRAIN_TSDB_MAX_CONNECTIONS  clients connected at once (default 16; all share ONE backend)
//   CITYBRAIN_TSDB_RESET_SESSIONS   1 (default): DISCARD ALL before a client starts while no
//                                   other client is connected, so it does not inherit the
//                                   last one's prepared statements, SET ROLE, GUCs, temp tables
//   CITYBRAIN_TSDB_DEBUG=1          log the socket server's calls
//   CITYBRAIN_TSDB_INSPECT=1        hex-dump the protocol traffic
//
// Layout: PGLiteSocketServer (from @electric-sql/pglite-socket) listens on a private Unix
// socket; this script listens on the TCP port and relays each client to it, after answering
// the SSL/GSS encryption requests with 'N' (the socket server does not answer them, so a
// client with the default sslmode=prefer would hang) and refusing clients over the limit
// with a proper PostgreSQL error.
//
// Limits (of the WebAssembly build, not of TimescaleDB): one backend serves every connection
// (queries are queued; concurrent clients share session state such as prepared statements);
// a password must be sent (any is accepted); no SSL; `COPY ... FROM STDIN` drops the connection.
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

const env = process.env
const host = env.CITYBRAIN_TSDB_HOST || '127.0.0.1'
const port = Number(env.CITYBRAIN_TSDB_PORT || 5499)
const dataDir = process.argv[2] || env.CITYBRAIN_TSDB_DATA_DIR || 'memory://'
const maxConnections = Number(env.CITYBRAIN_TSDB_MAX_CONNECTIONS || 16)
const resetSessions = (env.CITYBRAIN_TSDB_RESET_SESSIONS ?? '1') !== '0'
const debug = env.CITYBRAIN_TSDB_DEBUG === '1'
const inspect = env.CITYBRAIN_TSDB_INSPECT === '1'

function fail(message) {
  console.error(`citybrain-tsdb: ${message}`)
  process.exit(2)
}
function listenError(err) {
  return err?.code === 'EADDRINUSE'
    ? `port ${host}:${port} is already in use`
    : `cannot listen on ${host}:${port}: ${err?.message ?? err}`
}

if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`bad port ${env.CITYBRAIN_TSDB_PORT}`)
if (!Number.isInteger(maxConnections) || maxConnections < 1) fail('bad CITYBRAIN_TSDB_MAX_CONNECTIONS')

// Fail fast, before the seconds PGlite takes to start, when the port is taken.
const probeError = await new Promise((resolve) => {
  const probe = net.createServer()
  probe.once('error', resolve)
  probe.once('listening', () => probe.close(() => resolve(null)))
  probe.listen(port, host)
})
if (probeError) fail(listenError(probeError))

const started = Date.now()
const memory = dataDir === 'memory://' || dataDir === ''
const db = await PGlite.create({
  dataDir: memory ? undefined : dataDir,
  extensions: { timescaledb },
})
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
const version = (await db.query(
  "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
)).rows[0].extversion

const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'citybrain-tsdb-'))
const sockPath = path.join(sockDir, 'pglite.sock')
// The front enforces the limit (with a proper error); the socket server's own limit (it writes
// a bare "Too many connections" line) is set higher, as it sees a closed client go a bit late.
const inner = new PGLiteSocketServer({
  db, path: sockPath, maxConnections: maxConnections + 64, debug, inspect,
})
await inner.start()

// --- wire-protocol helpers -------------------------------------------------------------
const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102

function message(type, body) {
  const msg = Buffer.alloc(5 + body.length)
  msg.write(type, 0, 'latin1')
  msg.writeInt32BE(4 + body.length, 1)
  body.copy(msg, 5)
  return msg
}
function errorResponse(code, text) {
  const fields = [['S', 'FATAL'], ['V', 'FATAL'], ['C', code], ['M', text]]
  return message('E', Buffer.concat([
    ...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8')), Buffer.from([0]),
  ]))
}
const simpleQuery = (sql) => new Uint8Array(message('Q', Buffer.from(`${sql}\0`, 'utf8')))
const SYNC = new Uint8Array([0x53, 0, 0, 0, 4]) // ends an extended-protocol batch left half-done

// --- session reset ---------------------------------------------------------------------
// Every client shares the one backend, and nothing resets it when a client leaves. Before a
// client starts while no other is attached, reset the session; PGlite's own start-up sets
// search_path to public (its boot value is pg_catalog), so set it again after DISCARD ALL.
let dirty = false
async function resetSession() {
  await db.runExclusive(async () => {
    await db.execProtocolRaw(SYNC)
    if (db.isInTransaction()) await db.execProtocolRaw(simpleQuery('ROLLBACK'))
    await db.execProtocolRaw(simpleQuery('DISCARD ALL'))
    await db.execProtocolRaw(simpleQuery('SET search_path TO public'))
  })
  dirty = false
}

// --- the TCP front -----------------------------------------------------------------------
const clients = new Set() // every accepted client socket
const attached = new Set() // clients relayed to the backend
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function handleClient(client) {
  client.setNoDelay(true)
  clients.add(client)
  const gone = () => { clients.delete(client); attached.delete(client) }
  client.once('close', gone)
  client.on('error', (err) => { if (debug) console.error('citybrain-tsdb: client', err.message) })

  if (clients.size > maxConnections) {
    client.end(errorResponse('53300', `sorry, too many clients already (max ${maxConnections})`))
    return
  }

  let buf = Buffer.alloc(0)
  const onData = (chunk) => {
    buf = Buffer.concat([buf, chunk])
    while (buf.length >= 8) {
      const len = buf.readInt32BE(0)
      const code = buf.readInt32BE(4)
      if (len === 8 && (code === SSL_REQUEST || code === GSSENC_REQUEST)) {
        client.write('N') // no encryption: the client goes on in plain text
        buf = buf.subarray(8)
        continue
      }
      client.off('data', onData)
      client.pause()
      if (code === CANCEL_REQUEST) {
        client.end() // query cancellation is not supported
        return
      }
      relay(client, buf).catch((err) => {
        console.error('citybrain-tsdb: relay failed:', err?.message ?? err)
        client.destroy()
      })
      return
    }
  }
  client.on('data', onData)
}

async function relay(client, firstBytes) {
  if (resetSessions && dirty) {
    // A client that closed just before this one connected may not be seen as gone yet.
    if (attached.size > 0) await wait(20)
    if (attached.size === 0 && !client.destroyed) await resetSession()
  }
  if (client.destroyed) return
  attached.add(client)
  dirty = true
  const backend = net.connect(sockPath)
  backend.setNoDelay(true)
  backend.on('error', (err) => {
    if (debug) console.error('citybrain-tsdb: backend', err.message)
    client.destroy()
  })
  backend.once('close', () => client.destroy())
  client.once('close', () => backend.destroy())
  backend.write(firstBytes)
  client.pipe(backend)
  backend.pipe(client)
  client.resume()
}

const front = net.createServer(handleClient)
await new Promise((resolve) => {
  const onError = (err) => fail(listenError(err))
  front.once('error', onError)
  front.listen(port, host, () => { front.off('error', onError); resolve() })
})
front.on('error', (err) => console.error('citybrain-tsdb: server error:', err?.message ?? err))

console.log(
  `citybrain-tsdb ready on ${host}:${port} (TimescaleDB ${version}, ` +
    `data ${memory ? 'memory://' : dataDir}, ${Date.now() - started} ms)`,
)

let stopping = false
async function shutdown(signal) {
  if (stopping) return
  stopping = true
  console.log(`citybrain-tsdb: ${signal}, stopping`)
  setTimeout(() => {
    console.error('citybrain-tsdb: did not stop within 10 s, exiting')
    process.exit(1)
  }, 10_000).unref()
  let code = 0
  try {
    const closed = new Promise((resolve) => front.close(resolve))
    for (const client of clients) client.destroy()
    await closed
    await inner.stop()
    await db.close()
  } catch (err) {
    console.error('citybrain-tsdb: error while stopping:', err?.message ?? err)
    code = 1
  }
  fs.rmSync(sockDir, { recursive: true, force: true })
  process.exit(code)
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
