// Kept under symbols so that registering the plugin twice on one server cannot add a second listener.
export const kConnectionListener = Symbol('fastify-rendezvous.connectionListener')
export const kConnectListener = Symbol('fastify-rendezvous.connectListener')
export const kRequestListener = Symbol('fastify-rendezvous.requestListener')
export const kClientErrorListener = Symbol('fastify-rendezvous.clientErrorListener')
/** Marks a request the hand-off took: its value is what the mobile side decided. */
export const kTicket = Symbol('fastify-rendezvous.ticket')
/** Marks a request that named an unknown ID and was left to the app's routes: its value is the name, for the log. */
export const kUnknownId = Symbol('fastify-rendezvous.unknownId')
/** Marks a request whose head Node cut at its header count: a credential may have been among the fields it dropped. */
export const kTruncated = Symbol('fastify-rendezvous.truncated')
/** The id a parked hidden-side connection carries in log lines, so the mobile side can name it. */
export const kConnId = Symbol('fastify-rendezvous.connId')
