import type { Socket } from 'node:net'

// What a hidden server's socket does while its CONNECT's token is checked.
// It must send nothing until a request reaches it; bytes it sends meanwhile
// would be spliced to a waiting client as an answer written before the
// request, and a socket that already ended would be handed to one as if it
// could still serve it. Shared listeners with flags on the socket: no closure
// per CONNECT.

const kSeen = Symbol('fastify-rendezvous.seenWhileChecked')
const DATA = 1
const END = 2

type Watched = Socket & { [kSeen]?: number }

// One byte decides the answer (409): the rest is left unread, so a peer that floods is held back by TCP, not read at line rate.
function onData (this: Watched): void {
  this[kSeen] = (this[kSeen] ?? 0) | DATA
  this.removeListener('data', onData)
  this.pause()
}
function onEnd (this: Watched): void { this[kSeen] = (this[kSeen] ?? 0) | END }

/** Reads the socket from now on, noting bytes (then it stops reading) and an end; what it reads is never relayed. */
export function watchWhileChecked (socket: Socket): void {
  socket.on('data', onData)
  socket.on('end', onEnd)
}

/** Stops watching, the socket paused (the lot or a splice reads it next), and says what was seen. */
export function stopWatching (socket: Socket): { sentMore: boolean, ended: boolean } {
  socket.removeListener('data', onData)
  socket.removeListener('end', onEnd)
  socket.pause()
  const seen = (socket as Watched)[kSeen] ?? 0
  // Not `delete`: it would turn the socket into a slow dictionary object for as long as it stays parked.
  if (seen !== 0) (socket as Watched)[kSeen] = undefined
  return { sentMore: (seen & DATA) !== 0 || socket.readableLength > 0, ended: (seen & END) !== 0 }
}
