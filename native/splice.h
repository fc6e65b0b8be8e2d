/*
 * The optional native data path of fastify-rendezvous (docs/performance.md,
 * "The native data path"): moves the bytes of plain-TCP pairs in one
 * background thread, the way C proxies do, so that no JavaScript runs per
 * chunk: small reads are copied (recv/send), bulk flows go through a pipe
 * with splice(2).
 *
 * Ownership, which is what keeps this safe:
 * - start() dup()s both descriptors: the thread works on its own copies, so
 *   nothing JavaScript does to its sockets can make it touch a reused fd
 *   number. The copies are closed only on the JS thread, in the end
 *   callback, after the thread has taken them out of its epoll set and
 *   forgotten the pair.
 * - A pair's memory belongs to the JS thread's slot table from start() to the
 *   end callback; the I/O thread only reads and writes its transfer state
 *   between go() and the end. abort() and bytes() touch only atomics and
 *   call shutdown(2) on descriptors that are still open.
 * - Ended pairs are reported after the whole batch of epoll events has been
 *   handled, so a later event of the same batch never reaches a pair the JS
 *   thread may already have freed.
 *
 * Semantics follow lib/relay/splice.ts: a FIN only half-closes (the other
 * side gets shutdown(SHUT_WR) once everything before the FIN went out); an
 * error on either side ends the pair; the idle timer ends it after idle ms
 * without a byte either way, touching neither socket. Where go() asked for
 * it, a hidden side that ends or fails before it sent the client a byte
 * ends the pair with the client's side left as it was, for JavaScript to
 * answer it 502; an idle end before that byte leaves it so too, for a 504.
 *
 * Node-API only (version 8), so one build works on every Node major >= 20;
 * its symbols resolve against the node binary when the addon is loaded.
 */
#ifndef RENDEZVOUS_SPLICE_H
#define RENDEZVOUS_SPLICE_H

/*
 * Shared by the three parts of the addon: pump.c moves one pair's bytes,
 * io-thread.c is the thread that runs the pumps, binding.c is the Node-API
 * side that runs on the JS thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define NAPI_VERSION 8
#include <node_api.h>

/* Pipes kept for reuse when no transfer holds them: a pipe is needed only while bytes are in flight. */
#define POOL_MAX 16

enum end_reason { END_NONE = 0, END_CLOSED, END_ERROR, END_IDLE, END_ABORTED, END_UNANSWERED };

struct pair;

/* One socket of a pair, as epoll sees it: epoll_event.data.ptr points here. */
struct side {
  struct pair *pair;
  int fd;
  int index; /* 0 = client, 1 = hidden */
  int can_read; /* edge-triggered readiness, cleared on EAGAIN */
  int can_write;
  int peer_closing; /* the last event said the peer sent its FIN (EPOLLRDHUP) or hung up */
};

/* Bytes from sides[i] to sides[1 - i]: direction 0 is toward the hidden server. */
struct direction {
  int pipe_r, pipe_w; /* -1 when no pipe is held */
  size_t in_pipe; /* bytes read in and not yet written out */
  int eof; /* the reading side sent its FIN */
  int bulk; /* the last read filled its buffer: splice */
  int shut; /* the FIN went on to the other side */
  int dead; /* the other side can no longer take bytes (reset): nothing more goes this way */
};

struct pair {
  struct side sides[2];
  struct direction dirs[2];
  int slot; /* index in the JS thread's table */
  int idle_ms; /* 0: no idle timer */
  int64_t last_active_ms;
  int queued; /* go() was called: JS thread only */
  /*
   * Set by go() before the thread sees the pair: a hidden side that ends or
   * fails before its first byte to the client ends the pair as
   * END_UNANSWERED, its FIN not passed on, so that JavaScript can still
   * answer the client on the same connection.
   */
  int answers_unanswered;
  int registered; /* in the epoll set and in the thread's list */
  int stalled; /* waiting for a pipe */
  enum end_reason end;
  int failed; /* a side reset or failed: the pair ends as an error once both directions are done */
  atomic_int abort_requested;
  _Atomic uint64_t moved[2];
  struct pair *prev, *next; /* the I/O thread's list of its pairs */
  struct pair *next_new; /* the queue from start() to the thread */
  struct pair *next_ended; /* ended within one batch of events */
};

struct addon {
  napi_threadsafe_function on_end;
  int tsfn_refd;
  int epfd, wakefd;
  pthread_t thread;
  int thread_started;
  atomic_int stopping;

  /* start() -> thread, under the mutex. */
  pthread_mutex_t lock;
  struct pair *incoming;

  /* I/O thread only. */
  struct pair *pairs;
  int npairs;
  int pool[POOL_MAX][2];
  int npool;
  int nstalled;
  int64_t next_sweep_ms;

  /* JS thread only. */
  struct pair **table;
  int *free_slots; /* a stack of the table's unused slots */
  int nfree;
  int table_size;
  int live;
};

/* The eventfd's epoll data.ptr: no side has this address. */
extern int rendezvous_wake_tag;

/* pump.c, I/O thread only. */
void pump (struct addon *a, struct pair *p, int64_t now, struct pair **ended);
void end_pair (struct addon *a, struct pair *p, enum end_reason why, struct pair **ended);
/* Also called by binding.c once the thread is gone. */
void drain_pool (struct addon *a);

/* io-thread.c */
void *io_thread (void *arg);

#endif
