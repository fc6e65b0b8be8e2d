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
 * without a byte either way.
 *
 * Node-API only (version 8), so one build works on every Node major >= 20;
 * its symbols resolve against the node binary when the addon is loaded.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Pipes kept for reuse when no transfer holds them: a pipe is needed only while bytes are in flight. */
#define POOL_MAX 16
/* Bytes asked of one splice(2) from a socket: the pipe takes what fits. */
#define SPLICE_CHUNK (1 << 20)
/*
 * Small reads are copied (recv then send) rather than spliced: for a
 * request or an answer of a few hundred bytes two copies cost less than
 * moving pages through a pipe. PIPE_BUF, so that what send() could not take
 * always fits an empty pipe in one atomic write. A read that fills it marks
 * the direction as bulk, which splices until a read comes back short.
 */
#define COPY_MAX 4096
#define EVENTS_PER_WAIT 256
/* How long the thread sleeps before retrying a direction that could not get a pipe (out of descriptors). */
#define STALL_RETRY_MS 50

enum end_reason { END_NONE = 0, END_CLOSED, END_ERROR, END_IDLE, END_ABORTED };
static const char *const END_NAMES[] = { "none", "closed", "error", "idle", "aborted" };

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
};

struct pair {
  struct side sides[2];
  struct direction dirs[2];
  int slot; /* index in the JS thread's table */
  int idle_ms; /* 0: no idle timer */
  int64_t last_active_ms;
  int queued; /* go() was called: JS thread only */
  int registered; /* in the epoll set and in the thread's list */
  int stalled; /* waiting for a pipe */
  enum end_reason end;
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

static int wake_tag; /* epoll data.ptr of the eventfd: no side has this address */

static int64_t now_ms (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- pipes ---------- */

/* A pipe for `d`, from the pool or new; 0 when the process is out of descriptors. */
static int take_pipe (struct addon *a, struct direction *d) {
  if (d->pipe_r >= 0) return 1;
  if (a->npool > 0) {
    a->npool--;
    d->pipe_r = a->pool[a->npool][0];
    d->pipe_w = a->pool[a->npool][1];
    return 1;
  }
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return 0;
  d->pipe_r = p[0];
  d->pipe_w = p[1];
  return 1;
}

/* An empty pipe goes back to the pool; one with bytes left (a pair that failed) is closed. */
static void give_pipe (struct addon *a, struct direction *d) {
  if (d->pipe_r < 0) return;
  if (d->in_pipe == 0 && a->npool < POOL_MAX && a->npairs > 0) {
    a->pool[a->npool][0] = d->pipe_r;
    a->pool[a->npool][1] = d->pipe_w;
    a->npool++;
  } else {
    close(d->pipe_r);
    close(d->pipe_w);
  }
  d->pipe_r = d->pipe_w = -1;
  d->in_pipe = 0;
}

static void drain_pool (struct addon *a) {
  while (a->npool > 0) {
    a->npool--;
    close(a->pool[a->npool][0]);
    close(a->pool[a->npool][1]);
  }
}

/* ---------- moving bytes ---------- */

static int would_block (void) { return errno == EAGAIN || errno == EWOULDBLOCK; }

/* One read by copy (see COPY_MAX): 1 moved something, 0 nothing to read, -1 the pair fails. */
static int copy_once (struct pair *p, int i, int64_t now) {
  struct direction *d = &p->dirs[i];
  struct side *in = &p->sides[i], *out = &p->sides[1 - i];
  char buf[COPY_MAX];
  ssize_t n;
  do n = recv(in->fd, buf, sizeof buf, MSG_DONTWAIT); while (n < 0 && errno == EINTR);
  if (n == 0) {
    d->eof = 1;
    return 1;
  }
  if (n < 0) {
    if (!would_block()) return -1;
    in->can_read = 0;
    return 0;
  }
  p->last_active_ms = now;
  d->bulk = n == (ssize_t)sizeof buf;
  /*
   * A short read emptied the socket's receive queue, and new bytes will
   * raise a new edge: no need for the recv() that would only say EAGAIN.
   * Unless the FIN already arrived: its edge is spent, so read on to see it.
   */
  if (!d->bulk && !in->peer_closing) in->can_read = 0;
  ssize_t sent = 0;
  while (sent < n && out->can_write) {
    ssize_t w = send(out->fd, buf + sent, (size_t)(n - sent), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) sent += w;
    else if (w < 0 && errno == EINTR) continue;
    else if (w < 0 && would_block()) out->can_write = 0;
    else return -1;
  }
  atomic_fetch_add_explicit(&p->moved[i], (uint64_t)sent, memory_order_relaxed);
  if (sent < n) {
    /* The rest waits in the (empty) pipe, and leaves by the splice path like any backlog. */
    ssize_t w;
    do w = write(d->pipe_w, buf + sent, (size_t)(n - sent)); while (w < 0 && errno == EINTR);
    if (w != n - sent) return -1;
    d->in_pipe = (size_t)w;
  }
  return 1;
}

/*
 * Moves what it can from sides[i] to sides[1 - i]. Returns 0, or -1 on an
 * error that ends the pair. Backpressure: it reads in only while the pipe
 * is empty or the last read did not block, and stops when the writer
 * blocks, so a slow reader holds at most one pipe of bytes here.
 */
static int pump_direction (struct addon *a, struct pair *p, int i, int64_t now) {
  struct direction *d = &p->dirs[i];
  struct side *in = &p->sides[i], *out = &p->sides[1 - i];
  for (;;) {
    int progress = 0;
    if (d->in_pipe > 0 && out->can_write) {
      ssize_t n = splice(d->pipe_r, NULL, out->fd, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d->in_pipe -= (size_t)n;
        atomic_fetch_add_explicit(&p->moved[i], (uint64_t)n, memory_order_relaxed);
        p->last_active_ms = now;
        progress = 1;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && would_block()) {
        out->can_write = 0;
      } else {
        return -1; /* EPIPE, ECONNRESET...: the other peer is gone */
      }
    }
    if (d->in_pipe == 0) give_pipe(a, d);
    if (d->eof) {
      if (d->in_pipe == 0 && !d->shut) {
        /* Everything before the FIN is out: pass the FIN on, and only the FIN. */
        if (shutdown(out->fd, SHUT_WR) != 0 && errno != ENOTCONN) return -1;
        d->shut = 1;
      }
      return 0;
    }
    if (in->can_read) {
      if (!take_pipe(a, d)) {
        if (!p->stalled) { p->stalled = 1; a->nstalled++; }
        return 0;
      }
      int was_empty = d->in_pipe == 0;
      if (was_empty && !d->bulk && out->can_write) {
        int r = copy_once(p, i, now);
        if (r < 0) return -1;
        if (d->in_pipe == 0) give_pipe(a, d);
        if (r == 0) return 0;
        continue;
      }
      ssize_t n = splice(in->fd, NULL, d->pipe_w, NULL, SPLICE_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d->in_pipe += (size_t)n;
        d->bulk = n >= COPY_MAX;
        p->last_active_ms = now;
        progress = 1;
      } else if (n == 0) {
        d->eof = 1;
        progress = 1;
      } else if (errno == EINTR) {
        continue;
      } else if (would_block()) {
        /* An empty pipe cannot be full, so the socket is drained; otherwise the pipe may be full and the socket still readable. */
        if (was_empty) in->can_read = 0;
      } else {
        return -1;
      }
    }
    if (d->in_pipe == 0) give_pipe(a, d);
    if (!progress) return 0;
  }
}

static void end_pair (struct addon *a, struct pair *p, enum end_reason why, struct pair **ended) {
  if (p->end != END_NONE) return;
  p->end = why;
  for (int i = 0; i < 2; i++) {
    /* The descriptors stay open until the JS thread closes them; only this thread's interest ends here. */
    if (epoll_ctl(a->epfd, EPOLL_CTL_DEL, p->sides[i].fd, NULL) != 0 && errno != ENOENT && errno != EBADF) {
      fprintf(stderr, "rendezvous native splice: epoll_ctl DEL: %s\n", strerror(errno));
    }
    give_pipe(a, &p->dirs[i]);
  }
  if (p->stalled) { p->stalled = 0; a->nstalled--; }
  if (p->prev != NULL) p->prev->next = p->next; else a->pairs = p->next;
  if (p->next != NULL) p->next->prev = p->prev;
  p->prev = p->next = NULL;
  a->npairs--;
  if (a->npairs == 0) drain_pool(a);
  p->next_ended = *ended;
  *ended = p;
}

static void pump (struct addon *a, struct pair *p, int64_t now, struct pair **ended) {
  if (p->end != END_NONE) return;
  if (atomic_load(&p->abort_requested)) {
    end_pair(a, p, END_ABORTED, ended);
    return;
  }
  if (p->stalled) { p->stalled = 0; a->nstalled--; }
  for (int i = 0; i < 2; i++) {
    if (pump_direction(a, p, i, now) != 0) {
      end_pair(a, p, atomic_load(&p->abort_requested) ? END_ABORTED : END_ERROR, ended);
      return;
    }
  }
  /* Both FINs passed on and nothing left in flight: both sides closed in turn. */
  if (p->dirs[0].shut && p->dirs[1].shut) end_pair(a, p, END_CLOSED, ended);
}

/* ---------- the I/O thread ---------- */

/* How often idle pairs are looked for: an eighth of the shortest idle timeout, 10 ms to 1 s. */
static int sweep_every (int idle_ms) {
  int every = idle_ms / 8;
  return every < 10 ? 10 : every > 1000 ? 1000 : every;
}

static void register_pair (struct addon *a, struct pair *p, int64_t now, struct pair **ended) {
  p->last_active_ms = now;
  p->next = a->pairs;
  if (a->pairs != NULL) a->pairs->prev = p;
  a->pairs = p;
  a->npairs++;
  p->registered = 1;
  for (int i = 0; i < 2; i++) {
    /* Edge-triggered: a pair with nothing to do costs no wake-ups at all. */
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &p->sides[i] };
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, p->sides[i].fd, &ev) != 0) {
      end_pair(a, p, END_ERROR, ended);
      return;
    }
  }
  if (p->idle_ms > 0 && (a->next_sweep_ms == 0 || now + sweep_every(p->idle_ms) < a->next_sweep_ms)) a->next_sweep_ms = now + sweep_every(p->idle_ms);
  pump(a, p, now, ended);
}

static void take_incoming (struct addon *a, int64_t now, struct pair **ended) {
  uint64_t count;
  while (read(a->wakefd, &count, sizeof count) < 0 && errno == EINTR) {}
  pthread_mutex_lock(&a->lock);
  struct pair *list = a->incoming;
  a->incoming = NULL;
  pthread_mutex_unlock(&a->lock);
  while (list != NULL) {
    struct pair *p = list;
    list = p->next_new;
    p->next_new = NULL;
    register_pair(a, p, now, ended);
  }
}

/*
 * Ends idle pairs and, while some direction waits for a pipe, retries it.
 * The sweep runs every eighth of the shortest idle timeout (10 ms to 1 s):
 * one comparison per pair, never a timer per pair.
 */
static void sweep (struct addon *a, int64_t now, struct pair **ended) {
  int shortest = 0;
  struct pair *p = a->pairs;
  while (p != NULL) {
    struct pair *next = p->next;
    if (p->idle_ms > 0 && now - p->last_active_ms >= p->idle_ms) {
      end_pair(a, p, END_IDLE, ended);
    } else {
      if (p->idle_ms > 0 && (shortest == 0 || p->idle_ms < shortest)) shortest = p->idle_ms;
      if (p->stalled) pump(a, p, now, ended);
    }
    p = next;
  }
  a->next_sweep_ms = shortest == 0 ? 0 : now + sweep_every(shortest);
}

static int wait_timeout (struct addon *a, int64_t now) {
  int64_t t = -1;
  if (a->next_sweep_ms > 0) t = a->next_sweep_ms > now ? a->next_sweep_ms - now : 0;
  if (a->nstalled > 0 && (t < 0 || t > STALL_RETRY_MS)) t = STALL_RETRY_MS;
  return (int)t;
}

static void *io_thread (void *arg) {
  struct addon *a = arg;
  struct epoll_event events[EVENTS_PER_WAIT];
  while (!atomic_load(&a->stopping)) {
    int n = epoll_wait(a->epfd, events, EVENTS_PER_WAIT, wait_timeout(a, now_ms()));
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "rendezvous native splice: epoll_wait: %s\n", strerror(errno));
      break;
    }
    int64_t now = now_ms();
    struct pair *ended = NULL;
    for (int k = 0; k < n; k++) {
      if (events[k].data.ptr == &wake_tag) {
        take_incoming(a, now, &ended);
        continue;
      }
      struct side *s = events[k].data.ptr;
      uint32_t ev = events[k].events;
      if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->can_read = 1;
      if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->peer_closing = 1;
      if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s->can_write = 1;
      pump(a, s->pair, now, &ended);
    }
    if ((a->next_sweep_ms > 0 && now >= a->next_sweep_ms) || a->nstalled > 0) sweep(a, now, &ended);
    /* Only now: a pair reported earlier could be freed by the JS thread while the batch still named it. */
    while (ended != NULL) {
      struct pair *p = ended;
      ended = p->next_ended;
      if (napi_call_threadsafe_function(a->on_end, p, napi_tsfn_nonblocking) != napi_ok) {
        /* Only when Node is tearing the environment down; free_addon() frees every pair. */
      }
    }
  }
  return NULL;
}

/* ---------- the JS side ---------- */

#define CHECK(env, call) do { if ((call) != napi_ok) { napi_throw_error((env), "ERR_RENDEZVOUS_NATIVE", #call " failed"); return NULL; } } while (0)

static napi_value throw_errno (napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, err == EMFILE || err == ENFILE ? "EMFILE" : "ERR_RENDEZVOUS_NATIVE", msg);
  return NULL;
}

static void free_pair (struct pair *p) {
  for (int i = 0; i < 2; i++) {
    if (p->sides[i].fd >= 0) close(p->sides[i].fd);
    /* Pipes are the I/O thread's, and it gave them up in end_pair(); these are only left after a thread that never ran. */
    if (p->dirs[i].pipe_r >= 0) { close(p->dirs[i].pipe_r); close(p->dirs[i].pipe_w); }
  }
  free(p);
}

/* Runs on the JS thread for every ended pair: reports it, then closes its descriptors and frees it. */
static void call_on_end (napi_env env, napi_value callback, void *context, void *data) {
  struct addon *a = context;
  struct pair *p = data;
  if (env == NULL) return; /* teardown: free_addon() frees what is left in the table */
  a->table[p->slot] = NULL;
  a->free_slots[a->nfree++] = p->slot;
  if (--a->live == 0 && a->tsfn_refd) {
    /* No pair open: the addon must not keep the process alive. */
    napi_unref_threadsafe_function(env, a->on_end);
    a->tsfn_refd = 0;
  }
  napi_value argv[4], undefined;
  napi_create_int32(env, p->slot, &argv[0]);
  napi_create_string_utf8(env, END_NAMES[p->end], NAPI_AUTO_LENGTH, &argv[1]);
  napi_create_double(env, (double)atomic_load(&p->moved[0]), &argv[2]);
  napi_create_double(env, (double)atomic_load(&p->moved[1]), &argv[3]);
  free_pair(p);
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, callback, 4, argv, NULL);
}

static int grow_table (struct addon *a) {
  if (a->table_size > (1 << 24)) return 0;
  int size = a->table_size == 0 ? 64 : a->table_size * 2;
  struct pair **t = realloc(a->table, (size_t)size * sizeof *t);
  if (t == NULL) return 0;
  a->table = t;
  int *f = realloc(a->free_slots, (size_t)size * sizeof *f);
  if (f == NULL) return 0;
  a->free_slots = f;
  /* Pushed highest first, so that low slots are used first. */
  for (int i = size - 1; i >= a->table_size; i--) {
    t[i] = NULL;
    f[a->nfree++] = i;
  }
  a->table_size = size;
  return 1;
}

static int take_slot (struct addon *a) {
  if (a->nfree == 0 && !grow_table(a)) return -1;
  return a->free_slots[--a->nfree];
}

static struct addon *addon_of (napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

static napi_value get_args (napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_value self;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "missing arguments");
    return NULL;
  }
  return self;
}

/*
 * start(clientFd, hiddenFd, idleMs) -> slot: duplicates both descriptors and
 * reserves the pair, but moves nothing until go(slot). Split in two so that
 * a caller learns that descriptors ran out (EMFILE) before it has changed
 * anything about its sockets, and can keep to the JavaScript path.
 */
static napi_value js_start (napi_env env, napi_callback_info info) {
  struct addon *a = addon_of(env);
  napi_value argv[3], out;
  if (get_args(env, info, 3, argv) == NULL) return NULL;
  int32_t fds[2], idle;
  CHECK(env, napi_get_value_int32(env, argv[0], &fds[0]));
  CHECK(env, napi_get_value_int32(env, argv[1], &fds[1]));
  CHECK(env, napi_get_value_int32(env, argv[2], &idle));
  if (fds[0] < 0 || fds[1] < 0 || idle < 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "descriptors and the idle timeout must not be negative");
    return NULL;
  }
  if (a->on_end == NULL) {
    napi_throw_error(env, "ERR_RENDEZVOUS_NATIVE", "init() was not called");
    return NULL;
  }
  if (!a->thread_started) {
    int err = pthread_create(&a->thread, NULL, io_thread, a);
    if (err != 0) return throw_errno(env, "pthread_create", err);
    a->thread_started = 1;
  }
  struct pair *p = calloc(1, sizeof *p);
  if (p == NULL) return throw_errno(env, "allocating a pair", ENOMEM);
  for (int i = 0; i < 2; i++) {
    p->sides[i].pair = p;
    p->sides[i].index = i;
    p->sides[i].can_read = p->sides[i].can_write = 1;
    p->sides[i].fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
    p->dirs[i].pipe_r = p->dirs[i].pipe_w = -1;
  }
  if (p->sides[0].fd < 0 || p->sides[1].fd < 0) {
    int err = errno;
    free_pair(p);
    return throw_errno(env, "dup", err);
  }
  /*
   * The duplicates must not eat the descriptors the server needs to accept
   * connections: past half the limit (descriptors are numbered lowest
   * first, so the number tells how many are open), pairs stay in
   * JavaScript, which needs none of its own.
   */
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && (rlim_t)p->sides[1].fd >= lim.rlim_cur / 2) {
    free_pair(p);
    return throw_errno(env, "dup: past half the open-file limit", EMFILE);
  }
  int slot = take_slot(a);
  if (slot < 0) {
    free_pair(p);
    return throw_errno(env, "allocating a slot", ENOMEM);
  }
  p->slot = slot;
  p->idle_ms = idle;
  a->table[slot] = p;
  if (a->live++ == 0 && !a->tsfn_refd) {
    napi_ref_threadsafe_function(env, a->on_end);
    a->tsfn_refd = 1;
  }
  CHECK(env, napi_create_int32(env, slot, &out));
  return out;
}

static struct pair *pair_at (napi_env env, napi_value v);

/* go(slot): the I/O thread takes the pair over; call it once, after JavaScript flushed what it owed either side. */
static napi_value js_go (napi_env env, napi_callback_info info) {
  struct addon *a = addon_of(env);
  napi_value argv[1];
  if (get_args(env, info, 1, argv) == NULL) return NULL;
  struct pair *p = pair_at(env, argv[0]);
  if (p == NULL || p->queued) {
    napi_throw_error(env, "ERR_RENDEZVOUS_NATIVE", "no such pair waiting to go");
    return NULL;
  }
  p->queued = 1;
  pthread_mutex_lock(&a->lock);
  p->next_new = a->incoming;
  a->incoming = p;
  pthread_mutex_unlock(&a->lock);
  uint64_t one = 1;
  while (write(a->wakefd, &one, sizeof one) < 0 && errno == EINTR) {}
  return NULL;
}

static struct pair *pair_at (napi_env env, napi_value v) {
  struct addon *a = addon_of(env);
  int32_t slot;
  if (napi_get_value_int32(env, v, &slot) != napi_ok || slot < 0 || slot >= a->table_size) return NULL;
  return a->table[slot];
}

/* bytes(slot, out): fills out[0] (toward the hidden server) and out[1]; false once the pair ended. */
static napi_value js_bytes (napi_env env, napi_callback_info info) {
  napi_value argv[2], result, n;
  if (get_args(env, info, 2, argv) == NULL) return NULL;
  struct pair *p = pair_at(env, argv[0]);
  if (p != NULL) {
    for (uint32_t i = 0; i < 2; i++) {
      CHECK(env, napi_create_double(env, (double)atomic_load_explicit(&p->moved[i], memory_order_relaxed), &n));
      CHECK(env, napi_set_element(env, argv[1], i, n));
    }
  }
  CHECK(env, napi_get_boolean(env, p != NULL, &result));
  return result;
}

/*
 * abort(slot): the thread ends the pair as 'aborted' on its next look at it.
 * shutdown(2) wakes it through the pair's own descriptors (still open: only
 * the JS thread closes them), so no command queue is needed.
 */
static napi_value js_abort (napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) == NULL) return NULL;
  struct pair *p = pair_at(env, argv[0]);
  if (p != NULL && !atomic_exchange(&p->abort_requested, 1)) {
    for (int i = 0; i < 2; i++) shutdown(p->sides[i].fd, SHUT_RDWR);
  }
  return NULL;
}

/*
 * Environment teardown, first step: stop and join the thread. Registered in
 * init(), after the threadsafe function was created, because hooks run in
 * reverse order: this one runs before Node's own for the threadsafe
 * function, so the thread never calls into a function that is gone.
 */
static void stop_thread (void *arg) {
  struct addon *a = arg;
  if (a->thread_started) {
    atomic_store(&a->stopping, 1);
    uint64_t one = 1;
    while (write(a->wakefd, &one, sizeof one) < 0 && errno == EINTR) {}
    pthread_join(a->thread, NULL);
    a->thread_started = 0;
  }
  napi_release_threadsafe_function(a->on_end, napi_tsfn_abort);
}

/* Environment teardown, last step (the instance data's finaliser): the thread is gone, free everything. */
static void free_addon (napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  struct addon *a = data;
  /* init() registered stop_thread before any thread could start, and it has run by now. */
  for (int i = 0; i < a->table_size; i++) if (a->table[i] != NULL) free_pair(a->table[i]);
  free(a->table);
  free(a->free_slots);
  drain_pool(a);
  close(a->epfd);
  close(a->wakefd);
  pthread_mutex_destroy(&a->lock);
  free(a);
}

/* init(onEnd): onEnd(slot, end, toHidden, toClient) is called once for every pair that ends. */
static napi_value js_init (napi_env env, napi_callback_info info) {
  struct addon *a = addon_of(env);
  napi_value argv[1], name;
  if (get_args(env, info, 1, argv) == NULL) return NULL;
  if (a->on_end != NULL) {
    napi_throw_error(env, "ERR_RENDEZVOUS_NATIVE", "init() was already called");
    return NULL;
  }
  CHECK(env, napi_create_string_utf8(env, "rendezvous native splice", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, a, call_on_end, &a->on_end));
  /* Referenced only while a pair is open. */
  CHECK(env, napi_unref_threadsafe_function(env, a->on_end));
  CHECK(env, napi_add_env_cleanup_hook(env, stop_thread, a));
  return NULL;
}

/* stats(): what the addon holds now, for tests and for the leak checks. */
static napi_value js_stats (napi_env env, napi_callback_info info) {
  (void)info;
  struct addon *a = addon_of(env);
  napi_value out, v;
  CHECK(env, napi_create_object(env, &out));
  CHECK(env, napi_create_int32(env, a->live, &v));
  CHECK(env, napi_set_named_property(env, out, "pairs", v));
  CHECK(env, napi_get_boolean(env, a->thread_started, &v));
  CHECK(env, napi_set_named_property(env, out, "thread", v));
  return out;
}

NAPI_MODULE_INIT () {
  struct addon *a = calloc(1, sizeof *a);
  if (a == NULL) {
    napi_throw_error(env, "ERR_RENDEZVOUS_NATIVE", "out of memory");
    return NULL;
  }
  a->epfd = epoll_create1(EPOLL_CLOEXEC);
  a->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &wake_tag };
  if (a->epfd < 0 || a->wakefd < 0 || epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->wakefd, &ev) != 0) {
    int err = errno;
    if (a->epfd >= 0) close(a->epfd);
    if (a->wakefd >= 0) close(a->wakefd);
    free(a);
    return throw_errno(env, "epoll", err);
  }
  pthread_mutex_init(&a->lock, NULL);
  if (napi_set_instance_data(env, a, free_addon, NULL) != napi_ok) {
    napi_throw_error(env, "ERR_RENDEZVOUS_NATIVE", "cannot keep the addon's state");
    return NULL;
  }
  static const struct { const char *name; napi_callback fn; } fns[] = {
    { "init", js_init }, { "start", js_start }, { "go", js_go }, { "bytes", js_bytes }, { "abort", js_abort }, { "stats", js_stats }
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    CHECK(env, napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
    CHECK(env, napi_set_named_property(env, exports, fns[i].name, f));
  }
  return exports;
}
