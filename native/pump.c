/*
 * Moves one pair's bytes, on the I/O thread: small reads by copy, bulk
 * through a pipe with splice(2), FINs passed on one way at a time.
 */
#include "splice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

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

void drain_pool (struct addon *a) {
  while (a->npool > 0) {
    a->npool--;
    close(a->pool[a->npool][0]);
    close(a->pool[a->npool][1]);
  }
}

/* ---------- moving bytes ---------- */

static int would_block (void) { return errno == EAGAIN || errno == EWOULDBLOCK; }

/*
 * A reset or an error on one side ends the pair, but not before what that
 * side sent earlier has gone on: a hidden server that answers 413 and closes
 * while the client still uploads resets the connection, and its answer sits
 * in the receive queue ahead of the reset. So a failed read ends only its
 * own direction, as a FIN would (what was read still goes out, then a FIN),
 * and marks the other direction dead, as nothing more can be written to
 * a socket that failed; a failed write marks its own direction dead and
 * leaves the other to read what is left. The pair ends, as an error, once
 * both directions are done.
 */
static int read_failed (struct pair *p, int i) {
  p->failed = 1;
  p->dirs[i].eof = 1;
  /* A socket that fails to read is gone both ways: nothing more can be written to it. */
  p->dirs[1 - i].dead = 1;
  return 1;
}

static int write_failed (struct pair *p, struct direction *d) {
  p->failed = 1;
  d->dead = 1;
  return 1;
}

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
    if (!would_block()) return read_failed(p, i);
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
    else {
      atomic_fetch_add_explicit(&p->moved[i], (uint64_t)sent, memory_order_relaxed);
      return write_failed(p, d);
    }
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
 * Whether the hidden side (direction 1 reads it) ended or failed before it
 * sent the client anything, on a pair whose client is to be answered for
 * it: its FIN is then not passed on, and the pair ends as unanswered.
 */
static int unanswered (struct pair *p, int i) {
  return i == 1 && p->answers_unanswered && atomic_load_explicit(&p->moved[1], memory_order_relaxed) == 0;
}

/*
 * Moves what it can from sides[i] to sides[1 - i]. Returns 0, 1 when the
 * hidden side ended unanswered (see unanswered()), or -1 on an error that
 * ends the pair. Backpressure: it reads in only while the pipe
 * is empty or the last read did not block, and stops when the writer
 * blocks, so a slow reader holds at most one pipe of bytes here.
 */
static int pump_direction (struct addon *a, struct pair *p, int i, int64_t now) {
  struct direction *d = &p->dirs[i];
  struct side *in = &p->sides[i], *out = &p->sides[1 - i];
  for (;;) {
    int progress = 0;
    if (d->dead) {
      /* Whatever waits in the pipe can never be delivered: the pipe is closed, not pooled. */
      give_pipe(a, d);
      return 0;
    }
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
        write_failed(p, d); /* EPIPE, ECONNRESET...: the other peer is gone */
        continue;
      }
    }
    if (d->in_pipe == 0) give_pipe(a, d);
    if (d->eof) {
      if (d->in_pipe == 0 && !d->shut) {
        if (unanswered(p, i)) return 1;
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
        read_failed(p, i);
        progress = 1;
      }
    }
    if (d->in_pipe == 0) give_pipe(a, d);
    if (!progress) return 0;
  }
}

void end_pair (struct addon *a, struct pair *p, enum end_reason why, struct pair **ended) {
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

void pump (struct addon *a, struct pair *p, int64_t now, struct pair **ended) {
  if (p->end != END_NONE) return;
  if (atomic_load(&p->abort_requested)) {
    end_pair(a, p, END_ABORTED, ended);
    return;
  }
  if (p->stalled) { p->stalled = 0; a->nstalled--; }
  for (int i = 0; i < 2; i++) {
    int r = pump_direction(a, p, i, now);
    if (r != 0) {
      end_pair(a, p, atomic_load(&p->abort_requested) ? END_ABORTED : r > 0 ? END_UNANSWERED : END_ERROR, ended);
      return;
    }
  }
  /* Each direction passed its FIN on, or can carry nothing more: both sides closed in turn, or one failed. */
  int done0 = p->dirs[0].shut || p->dirs[0].dead, done1 = p->dirs[1].shut || p->dirs[1].dead;
  if (done0 && done1) end_pair(a, p, p->failed ? END_ERROR : END_CLOSED, ended);
}
