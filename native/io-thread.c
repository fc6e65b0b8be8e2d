/*
 * The one background thread: waits on every registered pair's sockets with
 * edge-triggered epoll, pumps the pairs that have something to do, ends
 * idle ones, and reports ended pairs to the JS thread.
 */
#include "splice.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_PER_WAIT 256
/* How long the thread sleeps before retrying a direction that could not get a pipe (out of descriptors). */
#define STALL_RETRY_MS 50

int rendezvous_wake_tag;

static int64_t now_ms (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

void *io_thread (void *arg) {
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
      if (events[k].data.ptr == &rendezvous_wake_tag) {
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
