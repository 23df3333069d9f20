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
// socket; this script listens on the TCP port and relays each client to it. The relay
//  - answers SSL/GSS encryption requests with 'N' (the socket server leaves them unanswered,
//    so a client with libpq's default sslmode=prefer would hang);
//  - refuses clients over the limit with a proper PostgreSQL error (53300);
//  - lets one client at a time use the single backend, from its first message until the
//    backend is idle again (ReadyForQuery 'I'): a query, an extended-protocol batch up to its
//    Sync, or a whole transaction. The socket server alone queues single protocol messages, so
//    concurrent clients' Parse/Bind/Execute interleave and a client can hang forever.
//
// Limits (of the WebAssembly build, not of TimescaleDB): one backend for every client, so a
// client idle in a transaction makes the others wait, and concurrent clients share session
// state (prepared statements: psycopg names them _pg3_0... on every connection, so turn them
// off with prepare_threshold=None when more than one connection is open); a password must be
// sent (any is accepted); no SSL; query cancel is not supported; `COPY ... FROM STDIN` drops
// the connection.
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
const log = (...args) => { if (debug) console.log('[citybrain-tsdb]', ...args) }

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

// A WebAssembly trap leaves the database dead for every client: say so and exit, rather than
// keep a port open that drops every connection.
const execProtocolRaw = db.execProtocolRaw.bind(db)
db.execProtocolRaw = async (...args) => {
  try {
    return await execProtocolRaw(...args)
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) {
      console.error(`citybrain-tsdb: the database crashed (WebAssembly: ${err.message}); exiting`)
      process.exit(3)
    }
    throw err
  }
}
const version = (await db.query(
  "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
)).rows[0].extversion

const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'citybrain-tsdb-'))
const sockPath = path.join(sockDir, 'pglite.sock')
// The relay enforces the limit; the socket server's own (it answers a bare "Too many
// connections" line) is set higher, as it sees a closed client go a little later.
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

// Client messages after which the backend answers ReadyForQuery: Query, Sync, FunctionCall.
const ENDS_BATCH = new Set(['Q', 'S', 'F'])

// `COPY ... FROM STDIN` traps the WebAssembly backend ("RuntimeError: unreachable"), which
// kills the database for every client. The relay swaps such a statement for one that raises
// feature_not_supported in the backend, so the client gets a normal error (and a transaction
// it was in fails, as it would on PostgreSQL).
const COPY_FROM_STDIN = /^\s*COPY\b[^;]*\bFROM\s+STDIN\b/i
const COPY_REFUSAL = "DO $citybrain$BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', " +
  "MESSAGE = 'COPY FROM STDIN is not supported by this WebAssembly TimescaleDB " +
  "(it would crash the server); use INSERT'; END$citybrain$"
function refuseCopyFromStdin(m) { // a Query or Parse message, or null when it is no such COPY
  const b = m.bytes
  if (m.type !== 'Q' && m.type !== 'P') return null
  const nameEnd = m.type === 'P' ? b.indexOf(0, 5) : 4 // Parse: statement name first
  const end = b.indexOf(0, nameEnd + 1)
  if (!COPY_FROM_STDIN.test(b.toString('utf8', nameEnd + 1, end < 0 ? b.length : end))) return null
  const sql = Buffer.from(`${COPY_REFUSAL}\0`, 'utf8')
  if (m.type === 'Q') return message('Q', sql)
  return message('P', Buffer.concat([b.subarray(5, nameEnd + 1), sql, Buffer.from([0, 0])]))
}

// --- session reset and cleanup -------------------------------------------------------------
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
// A client that went away mid-batch or mid-transaction: end what it left open.
async function abandonSession() {
  // let the socket server drop the client's queued messages first
  await new Promise((resolve) => setImmediate(() => setImmediate(resolve)))
  await db.runExclusive(async () => {
    await db.execProtocolRaw(SYNC)
    if (db.isInTransaction()) await db.execProtocolRaw(simpleQuery('ROLLBACK'))
  })
}

// --- the backend, one client at a time -------------------------------------------------------
let owner = null // the client using the backend now, or 'cleanup'
const waiting = [] // clients with messages, waiting for the backend

function acquire(c) {
  if (owner === c) return true
  if (owner === null && (waiting.length === 0 || waiting[0] === c)) {
    if (waiting[0] === c) waiting.shift()
    owner = c
    return true
  }
  if (!waiting.includes(c)) waiting.push(c)
  return false
}
function release(c) {
  if (owner !== c) return
  owner = null
  if (c.queue.length > 0 && !c.closed) waiting.push(c) // behind the others: take turns
  grantNext()
}
function grantNext() {
  while (owner === null && waiting.length > 0) {
    const next = waiting[0]
    if (next.closed) { waiting.shift(); continue }
    pump(next)
    if (owner !== next) break
  }
}

class Client {
  constructor(sock, id) {
    this.sock = sock
    this.id = id
    this.backend = null
    this.queue = [] // complete messages from the client, not yet sent to the backend
    this.pendingReady = 0 // ReadyForQuery answers still due
    this.status = 'I' // the backend's last transaction status for this client
    this.copyIn = false
    this.started = false // ReadyForQuery seen after the startup message
    this.closed = false
    this.inBuf = Buffer.alloc(0)
    this.startup = true // the next client message is the startup message (no type byte)
    this.hdr = Buffer.alloc(0) // server->client framing
    this.skip = 0
    this.type = ''
  }

  // client -> relay: split into whole messages
  fromClient(chunk) {
    this.inBuf = this.inBuf.length ? Buffer.concat([this.inBuf, chunk]) : chunk
    for (;;) {
      const off = this.startup ? 0 : 1
      if (this.inBuf.length < off + 4) break
      const len = off + this.inBuf.readInt32BE(off)
      if (this.inBuf.length < len) break
      this.queue.push({ type: this.startup ? '' : String.fromCharCode(this.inBuf[0]), bytes: this.inBuf.subarray(0, len) })
      this.inBuf = this.inBuf.subarray(len)
      this.startup = false
    }
    pump(this)
  }

  // backend -> client: pass everything on, watch for ReadyForQuery and COPY IN
  fromBackend(chunk) {
    this.sock.write(chunk)
    let pos = 0
    while (pos < chunk.length) {
      if (this.skip === 0) {
        const need = 5 - this.hdr.length
        this.hdr = Buffer.concat([this.hdr, chunk.subarray(pos, pos + need)])
        pos += Math.min(need, chunk.length - pos)
        if (this.hdr.length < 5) break
        this.type = String.fromCharCode(this.hdr[0])
        this.skip = this.hdr.readInt32BE(1) - 4
        this.hdr = Buffer.alloc(0)
        if (this.type === 'G' || this.type === 'W') this.copyIn = true
        if (this.skip === 0) continue
      }
      const n = Math.min(this.skip, chunk.length - pos)
      if (this.type === 'Z' && n > 0) this.ready(String.fromCharCode(chunk[pos]))
      pos += n
      this.skip -= n
    }
    pump(this)
  }

  ready(status) {
    this.status = status
    this.started = true
    this.copyIn = false
    if (this.pendingReady > 0) this.pendingReady--
    if (status === 'I' && this.pendingReady === 0) release(this)
  }
}

function pump(c) {
  if (c.closed || !c.backend) return
  while (c.queue.length > 0) {
    // after a batch's end, wait for its ReadyForQuery (the startup phase and COPY IN go on)
    if (c.started && c.pendingReady > 0 && !c.copyIn) return
    if (c.queue[0].type === 'X') { // Terminate: the client leaves; no need to wait for a turn
      c.queue.length = 0
      c.backend.end()
      return
    }
    if (c.queue[0].type === 'H' && owner !== c) { // Flush with nothing pending: a no-op, and
      c.queue.shift() // forwarding it would hold the backend (no ReadyForQuery follows it)
      continue
    }
    if (!acquire(c)) return
    const m = c.queue.shift()
    if (m.type === '' || ENDS_BATCH.has(m.type)) c.pendingReady++
    c.backend.write(refuseCopyFromStdin(m) ?? m.bytes)
  }
}

// --- the TCP front ---------------------------------------------------------------------------
const clients = new Set() // every accepted client
const attached = new Set() // clients relayed to the backend
let nextId = 1

function handleClient(sock) {
  sock.setNoDelay(true)
  const c = new Client(sock, nextId++)
  clients.add(c)
  sock.on('error', (err) => log(`client #${c.id}:`, err.message))
  sock.once('close', () => gone(c))

  // Before the startup message: answer the encryption requests, refuse cancel requests.
  let buf = Buffer.alloc(0)
  const onData = (chunk) => {
    buf = Buffer.concat([buf, chunk])
    while (buf.length >= 8) {
      const len = buf.readInt32BE(0)
      const code = buf.readInt32BE(4)
      if (len === 8 && (code === SSL_REQUEST || code === GSSENC_REQUEST)) {
        sock.write('N') // no encryption: the client goes on in plain text
        buf = buf.subarray(8)
        continue
      }
      sock.off('data', onData)
      sock.pause()
      if (code === CANCEL_REQUEST) {
        sock.end() // query cancellation is not supported
        return
      }
      if (attached.size + connecting >= maxConnections) {
        log(`client #${c.id} refused: ${attached.size} attached`)
        sock.end(errorResponse('53300', `sorry, too many clients already (max ${maxConnections})`))
        return
      }
      attach(c, buf).catch((err) => {
        console.error('citybrain-tsdb: relay failed:', err?.message ?? err)
        sock.destroy()
      })
      return
    }
  }
  sock.on('data', onData)
}

let connecting = 0 // clients between their startup message and attach
async function attach(c, firstBytes) {
  connecting++
  try {
    if (resetSessions && dirty) {
      // A client that closed just before this one connected may not be seen as gone yet.
      if (attached.size > 0) await new Promise((resolve) => setTimeout(resolve, 20))
      if (attached.size === 0 && !c.closed) await resetSession()
    }
  } finally {
    connecting--
  }
  if (c.closed) return
  attached.add(c)
  dirty = true
  log(`client #${c.id} attached: ${attached.size} attached`)
  const backend = net.connect(sockPath)
  c.backend = backend
  backend.setNoDelay(true)
  backend.on('error', (err) => { log(`backend #${c.id}:`, err.message); c.sock.destroy() })
  backend.once('close', () => c.sock.destroy())
  backend.on('data', (chunk) => c.fromBackend(chunk))
  c.sock.on('data', (chunk) => c.fromClient(chunk))
  c.fromClient(firstBytes)
  c.sock.resume()
}

function gone(c) {
  if (c.closed) return
  c.closed = true
  clients.delete(c)
  attached.delete(c)
  log(`client #${c.id} gone: ${attached.size} attached, owner ${owner?.id ?? owner}`)
  c.backend?.destroy()
  const i = waiting.indexOf(c)
  if (i >= 0) waiting.splice(i, 1)
  if (owner !== c) return
  if (c.status === 'I' && c.pendingReady === 0) {
    owner = null
    grantNext()
    return
  }
  owner = 'cleanup'
  abandonSession()
    .catch((err) => console.error('citybrain-tsdb: cleanup failed:', err?.message ?? err))
    .finally(() => { owner = null; grantNext() })
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
    for (const c of clients) c.sock.destroy()
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
