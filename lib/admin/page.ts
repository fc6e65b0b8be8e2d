// The admin page: plain HTML and one small script, served as they are (no build step).

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rendezvous admin</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222 }
  table { border-collapse: collapse; margin: 1rem 0 }
  th, td { border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: left }
  td.n { text-align: right; font-variant-numeric: tabular-nums }
  #status { min-height: 1.4em }
  #status.error { color: #b00 }
  pre { background: #f4f4f4; padding: .6rem; white-space: pre-wrap; word-break: break-all }
  [hidden] { display: none }
</style>
</head>
<body>
<h1>rendezvous admin</h1>
<form id="login">
  <label>Admin token <input id="token" type="password" autocomplete="off" size="40"></label>
  <button type="submit">Use token</button>
</form>
<p id="status" role="status"></p>
<table id="ids">
  <thead><tr><th>ID</th><th>created</th><th>parked</th><th>waiting</th><th>spliced</th><th>old secrets until</th><th>actions</th></tr></thead>
  <tbody></tbody>
</table>
<form id="add">
  <label>New ID (empty: a fresh UUID) <input id="new-id" size="40"></label>
  <button type="submit">Add</button>
</form>
<section id="result" hidden>
  <h2 id="result-title"></h2>
  <p>Run this next to the hidden server (PORT is where it listens). The secret is not shown again.</p>
  <pre id="command"></pre>
  <button id="copy" type="button">Copy command</button>
</section>
<script src="admin.js"></script>
</body>
</html>
`

export const PAGE_SCRIPT = `'use strict'
const $ = (id) => document.getElementById(id)
let token = sessionStorage.getItem('rendezvous-admin-token') || ''
let timer
// Whether the status shows the last refresh's failure, which the next good refresh clears;
// an action's error stays until the user's next action replaces it.
let refreshFailed = false

function say (text, error) {
  $('status').textContent = text
  $('status').className = error ? 'error' : ''
  refreshFailed = false
}

async function api (method, path, body) {
  // An empty bearer would only be refused, and counted as a refused admin request, which alerts.
  if (token === '') throw new Error('enter the admin token first')
  const res = await fetch(path, {
    method,
    headers: Object.assign({ authorization: 'Bearer ' + token }, body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const data = await res.json().catch(() => ({}))
  if (res.status === 401) throw Object.assign(new Error('unauthorized: check the admin token'), { unauthorized: true })
  if (!res.ok) throw new Error(data.message || ('HTTP ' + res.status))
  return data
}

function button (td, label, action) {
  const b = document.createElement('button')
  b.type = 'button'
  b.textContent = label
  b.addEventListener('click', action)
  td.append(b, ' ')
}

// One row per ID, kept from one refresh to the next and changed cell by cell:
// a row rebuilt every second loses the click under way on its buttons, and the text selected in it.
const rows = new Map()

function newRow (id) {
  const row = document.createElement('tr')
  row.dataset.id = id
  for (const numeric of [false, false, true, true, true, false]) row.insertCell().className = numeric ? 'n' : ''
  const td = row.insertCell()
  button(td, 'Rotate', () => act('rotated', 'POST', id, '/rotate'))
  button(td, 'Disconnect', () => act('disconnected', 'POST', id, '/disconnect'))
  button(td, 'Remove', () => { if (confirm('Remove ' + id + '?')) act('removed', 'DELETE', id, '') })
  rows.set(id, row)
  return row
}

function render (ids) {
  const body = $('ids').tBodies[0]
  const shown = new Set()
  let next = body.firstElementChild
  for (const r of ids) {
    shown.add(r.id)
    const row = rows.get(r.id) || newRow(r.id)
    const texts = [r.id, r.createdAt, r.parked, r.waiting, r.spliced, (r.previousSecretsUntil || []).join(', ')]
    texts.forEach((text, i) => { if (row.cells[i].textContent !== String(text)) row.cells[i].textContent = String(text) })
    // A row already in its place is left where it is; only a new one (or one out of order) is inserted.
    if (row === next) next = row.nextElementSibling
    else body.insertBefore(row, next)
  }
  for (const [id, row] of rows) if (!shown.has(id)) { row.remove(); rows.delete(id) }
}

function show (title, data) {
  $('result-title').textContent = title
  $('command').textContent = data.agentCommand
  $('result').hidden = false
}

// fetch() drops a path segment of dots (the IDs . and ..), written %2E too; the listener reads %252E there as a dot.
function idSegment (id) {
  return /^\\.+$/.test(id) ? id.replace(/\\./g, '%252E') : encodeURIComponent(id)
}

async function act (what, method, id, suffix) {
  say('')
  try {
    const data = await api(method, '/api/ids/' + idSegment(id) + suffix, method === 'POST' ? {} : undefined)
    if (data.agentCommand) show('New secret for ' + id, data)
    say(id + ' ' + what + (data.parked !== undefined ? ' (' + data.parked + ' parked, ' + data.spliced + ' spliced closed)' : ''))
    await refresh()
  } catch (err) { say(err.message, true) }
}

async function refresh () {
  clearTimeout(timer)
  let again = true
  try {
    const data = await api('GET', '/api/ids')
    render(data.ids)
    if (refreshFailed) say('')
  } catch (err) {
    // The last table stays: emptied, it would read as "no IDs". A wrong token is not asked again
    // every second (each is a refused request, which alerts) until a token is entered.
    say(err.message, true)
    refreshFailed = true
    again = !err.unauthorized
  }
  // After a failure too, so that the page recovers by itself; an action's refresh and the timer's may overlap, one timer stays.
  clearTimeout(timer)
  if (again) timer = setTimeout(refresh, 1000)
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault()
  token = $('token').value.trim()
  sessionStorage.setItem('rendezvous-admin-token', token)
  say('')
  // Another token may see other IDs, or none.
  render([])
  refresh()
})

$('add').addEventListener('submit', async (e) => {
  e.preventDefault()
  const id = $('new-id').value.trim()
  say('')
  try {
    const data = await api('POST', '/api/ids', id === '' ? {} : { id })
    $('new-id').value = ''
    show('Added ' + data.id, data)
    say(data.id + ' added')
    await refresh()
  } catch (err) { say(err.message, true) }
})

$('copy').addEventListener('click', async () => {
  const text = $('command').textContent
  try {
    await navigator.clipboard.writeText(text)
  } catch {
    const range = document.createRange()
    range.selectNodeContents($('command'))
    getSelection().removeAllRanges()
    getSelection().addRange(range)
    document.execCommand('copy')
  }
  say('command copied')
})

// Until a token is entered, there is nothing to ask the API: opening the page is not a refused request.
if (token === '') say('enter the admin token')
else refresh()
`
