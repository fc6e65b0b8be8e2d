import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { createEcho } from './websocket'

/*
 * The hidden web page of `rendezvous demo`: an http.Server that never
 * listens. The agent hands it the connections that mobile clients took, so
 * everything it serves has come through the rendezvous. The page exercises
 * what a real hidden server needs: a script, an image, a form POST and a
 * WebSocket opened with `?rendezvous=ID`.
 */

export interface DemoSiteOptions {
  /** The hidden server's ID, which the page needs for its WebSocket URL. */
  id: string
}

export interface DemoSite {
  /** Give it connections with `server.emit('connection', socket)`; it does not listen. */
  server: Server
  /** Open WebSockets and connections right now. */
  readonly stats: { connections: number, websockets: number }
  /** Says goodbye to WebSockets (1001), ends every connection, and cuts what is left after a moment. */
  close: () => Promise<void>
}

/** The greeting the hidden server sends on every new WebSocket. */
export const WS_GREETING = 'hello from the hidden server'
const MAX_FORM = 16 * 1024
const CLOSE_GRACE_MS = 1000

export function createDemoSite (opts: DemoSiteOptions): DemoSite {
  const page = renderPage(opts.id)
  const sockets = new Set<Duplex>()
  const echo = createEcho(WS_GREETING)
  const server = createServer((req, res) => { route(req, res, page) })
  // Idle keep-alive connections hold a parked slot at the rendezvous no longer than a browser needs them.
  server.keepAliveTimeout = 5_000

  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    else socket.destroy()
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (pathOf(req) !== '/ws') {
      socket.on('error', () => socket.destroy())
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    echo.accept(req, socket, head)
  })

  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    echo.close()
    for (const socket of sockets) socket.end()
    const gone = [...sockets].map(socket => new Promise<void>(resolve => {
      if (socket.destroyed) resolve()
      else socket.once('close', () => resolve())
    }))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(gone), new Promise(resolve => { timer = setTimeout(resolve, CLOSE_GRACE_MS) })])
    clearTimeout(timer)
    for (const socket of sockets) socket.destroy()
  }

  return {
    server,
    get stats () { return { connections: sockets.size, websockets: echo.open } },
    close: () => { closing ??= close(); return closing }
  }
}

function pathOf (req: IncomingMessage): string {
  const url = req.url ?? '/'
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

function route (req: IncomingMessage, res: ServerResponse, page: string): void {
  const path = pathOf(req)
  const method = req.method ?? 'GET'
  const asset = ASSETS.get(path)
  if (path === '/submit') {
    if (method !== 'POST') return send(res, 405, 'text/plain; charset=utf-8', 'use POST\n', { Allow: 'POST' })
    return submit(req, res)
  }
  const body = path === '/' ? page : asset?.body
  const type = path === '/' ? 'text/html; charset=utf-8' : asset?.type
  if (body === undefined || type === undefined) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n')
  if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'use GET\n', { Allow: 'GET, HEAD' })
  send(res, 200, type, body)
}

function submit (req: IncomingMessage, res: ServerResponse): void {
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume()
    return send(res, 415, 'text/plain; charset=utf-8', 'send a form (application/x-www-form-urlencoded)\n')
  }
  const chunks: Buffer[] = []
  let size = 0
  let refused = false
  req.on('data', (chunk: Buffer) => {
    size += chunk.length
    if (size > MAX_FORM) {
      if (!refused) send(res, 413, 'text/plain; charset=utf-8', 'the form is too large\n', { Connection: 'close' })
      refused = true
      return
    }
    chunks.push(chunk)
  })
  req.on('end', () => {
    if (refused) return
    const message = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('message') ?? ''
    send(res, 200, 'text/html; charset=utf-8', renderResult(message))
  })
}

function send (res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(body)
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': bytes.length,
    // Every reload goes through the rendezvous again, which is the point of the demo.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers
  })
  res.end(res.req.method === 'HEAD' ? undefined : bytes)
}

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
}

function renderPage (id: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>A hidden server, reached through the rendezvous</title>
<link rel="icon" href="/logo.svg" type="image/svg+xml">
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1d2733; }
  header { display: flex; align-items: center; gap: 1rem; }
  code { background: #eef2f6; padding: 0 .25rem; border-radius: 3px; }
  section { border-top: 1px solid #d5dde6; margin-top: 1.5rem; padding-top: .5rem; }
  #ws-log { font-family: ui-monospace, monospace; font-size: 14px; }
</style>
</head>
<body data-rendezvous-id="${escapeHtml(id)}">
<header>
  <img id="logo" src="/logo.svg" alt="rendezvous logo" width="64" height="64">
  <h1>Hello from the hidden server</h1>
</header>
<p>This page, its script and its logo were served by a web server that has no
open port: it parked connections at the rendezvous, which handed yours over.
Its ID is <code>${escapeHtml(id)}</code>.</p>
<p id="script-status">app.js has not run.</p>

<section>
  <h2>A form</h2>
  <form id="form" method="post" action="/submit">
    <label>Message <input id="message" name="message" value="hello, hidden server"></label>
    <button id="submit" type="submit">Send</button>
  </form>
</section>

<section>
  <h2>A WebSocket</h2>
  <p>Status: <span id="ws-status">connecting</span> &middot; <code id="ws-url"></code></p>
  <form id="ws-form">
    <input id="ws-input" value="ping" aria-label="WebSocket message">
    <button id="ws-send" type="submit">Send over the WebSocket</button>
  </form>
  <ul id="ws-log"></ul>
</section>
<script src="/app.js"></script>
</body>
</html>
`
}

function renderResult (message: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Form received</title>
<link rel="icon" href="/logo.svg" type="image/svg+xml">
<style>body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }</style>
</head>
<body>
<h1>The hidden server received your form</h1>
<p id="result">You sent: <strong id="value">${escapeHtml(message)}</strong></p>
<p><a id="back" href="/">Back</a></p>
</body>
</html>
`
}

const APP_JS = `'use strict'
;(function () {
  const id = document.body.dataset.rendezvousId
  document.getElementById('script-status').textContent = 'app.js ran: it came through the rendezvous too.'

  const status = document.getElementById('ws-status')
  const log = document.getElementById('ws-log')
  const input = document.getElementById('ws-input')
  const line = function (text) {
    const item = document.createElement('li')
    item.textContent = text
    log.appendChild(item)
  }

  // A browser cannot put Digest credentials on a WebSocket, so the ID goes in the query (Upgrade requests only).
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws?rendezvous=' + encodeURIComponent(id)
  document.getElementById('ws-url').textContent = url
  const ws = new WebSocket(url)
  const sendText = function (text) {
    ws.send(text)
    line('sent: ' + text)
  }
  ws.addEventListener('open', function () {
    status.textContent = 'open'
    sendText('hello from the browser')
  })
  ws.addEventListener('message', function (event) { line('received: ' + event.data) })
  ws.addEventListener('close', function (event) { status.textContent = 'closed (' + event.code + ')' })
  ws.addEventListener('error', function () { status.textContent = 'error' })

  document.getElementById('ws-form').addEventListener('submit', function (event) {
    event.preventDefault()
    if (ws.readyState === WebSocket.OPEN && input.value !== '') sendText(input.value)
  })
})()
`

const LOGO_SVG = `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <rect width="64" height="64" rx="12" fill="#1d4e89"/>
  <circle cx="18" cy="32" r="8" fill="#f4d35e"/>
  <circle cx="46" cy="32" r="8" fill="#f4d35e"/>
  <path d="M26 32h12" stroke="#ffffff" stroke-width="4" stroke-linecap="round"/>
</svg>
`

const ASSETS = new Map<string, { type: string, body: string }>([
  ['/app.js', { type: 'text/javascript; charset=utf-8', body: APP_JS }],
  ['/logo.svg', { type: 'image/svg+xml', body: LOGO_SVG }]
])
