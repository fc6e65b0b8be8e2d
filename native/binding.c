/*
 * The addon's Node-API side, on the JS thread: init, start, go, bytes,
 * abort and stats, the end callback, and the environment's teardown.
 */
#include "splice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const END_NAMES[] = { "none", "closed", "error", "idle", "aborted", "unanswered" };

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

/*
 * go(slot, answersUnanswered): the I/O thread takes the pair over; call it
 * once, after JavaScript flushed what it owed either side. With
 * answersUnanswered true, a hidden side that ends or fails before its first
 * byte to the client ends the pair as 'unanswered' (see struct pair).
 */
static napi_value js_go (napi_env env, napi_callback_info info) {
  struct addon *a = addon_of(env);
  napi_value argv[2];
  size_t argc = 2;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "missing arguments");
    return NULL;
  }
  bool answers = false;
  /* Absent or not a boolean: false, the behaviour of a caller that knows nothing of it. */
  if (argc >= 2 && napi_get_value_bool(env, argv[1], &answers) != napi_ok) answers = false;
  struct pair *p = pair_at(env, argv[0]);
  if (p == NULL || p->queued) {
    napi_throw_error(env, "ERR_RENDEZVOUS_NATIVE", "no such pair waiting to go");
    return NULL;
  }
  p->queued = 1;
  /* Before the pair is queued: the mutex below publishes it to the thread with the rest. */
  p->answers_unanswered = answers;
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
 * the JS thread closes them), so no command queue is needed. Before go()
 * the thread has not seen the pair, and sees the flag when it takes it:
 * nothing to wake, and the sockets are left as they are, so that
 * JavaScript can still answer a client whose hidden side failed or stayed
 * silent before the pair went native (a 502 or a 504 on the same
 * connection, which a shutdown would have closed).
 */
static napi_value js_abort (napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) == NULL) return NULL;
  struct pair *p = pair_at(env, argv[0]);
  if (p != NULL && !atomic_exchange(&p->abort_requested, 1) && p->queued) {
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
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &rendezvous_wake_tag };
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
