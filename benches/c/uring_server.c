/*
 * c-uring: a hand-written C echo and hello-world HTTP server on liburing, the
 * "hand-written C server" peer of `percore-bench net --compare --servers c-uring`.
 *
 *   c_uring_server echo|http --addr IP:PORT --cores N [--control] [--first-cpu K]
 *
 * Shape (the same as percore's bench server, benches/src/server.rs): N threads,
 * thread i pinned to the (K+i)-th allowed CPU when --first-cpu is given, each
 * with its own ring (SINGLE_ISSUER | DEFER_TASKRUN, else COOP_TASKRUN, else
 * none; ring fd registered), its own SO_REUSEPORT listener with a multishot
 * accept, and its own provided-buffer ring (1024 buffers of 16 KiB, as
 * percore's). Each connection has one multishot recv into that ring; a request
 * costs one SQE, the send. The loop is io_uring_submit_and_wait(1), then every
 * CQE is handled and the CQ advanced once.
 *
 * echo: each received buffer is sent back from the ring buffer itself (one
 * send in flight per connection, the next queued behind it; a short send sends
 * the rest) and returned to the ring when its send completes.
 * http: request heads are counted by their "\r\n\r\n" (the scan state carries
 * across reads); every head received so far is answered in one send with the
 * bytes percore's and tokio's bench servers send (benches/src/http.rs). A head
 * over 8 KiB is answered 400 and the connection closes.
 *
 * It prints one line `c-uring: <proto> listening on IP:PORT (N cores)`; with
 * --control it answers each `stats` line on stdin with `{}` and stops when
 * stdin closes. SIGTERM and SIGINT stop it too: every thread cancels its
 * requests, waits for their last completions, closes its connections and
 * frees what it holds.
 *
 * Build: benches/scripts/build_c_server.sh (C11, -O2, -luring, liburing >= 2.3).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* As percore's bench server (benches/src/server.rs RING_BUFFERS, RING_BUFFER_SIZE). */
#define BUFFERS 1024
#define BUFFER_SIZE (16 * 1024)
#define BUFFER_GROUP 0
/* As percore's runtime default: 256 SQ entries, twice as many CQ entries. */
#define RING_ENTRIES 256
#define MAX_HEAD (8 * 1024)
#define NO_BUFFER 0xffff

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\n"
			       "Content-Length: 13\r\n\r\nHello, world!";
static const char BAD_REQUEST[] =
	"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/* What a CQE is for: the low 3 bits of user_data; the rest is the connection. */
enum tag { TAG_ACCEPT, TAG_RECV, TAG_SEND, TAG_STOP, TAG_RETRY, TAG_IGNORE };

/* An output buffer of the HTTP server (grown with realloc, never while sent). */
struct out {
	char *data;
	size_t len, cap;
};

struct conn {
	int fd;
	bool recv_armed;  /* a multishot recv is in flight */
	bool sending;	  /* a send is in flight */
	bool closing;	  /* no more input is handled; close once idle */
	bool starved;	  /* on the thread's starved list (recv ended with ENOBUFS) */
	size_t sent;	  /* bytes of the in-flight buffer already sent */
	/* echo: received buffers not yet sent back, oldest first (linked by bid). */
	uint16_t head, tail;
	/* http: "\r\n\r\n" matched so far, bytes of the current head. */
	unsigned match;
	size_t head_len;
	struct out out[2]; /* http: [0] in flight, [1] filling */
	struct conn *prev, *next, *next_starved;
};

struct worker {
	int index, listen_fd, stop_fd, cpu;
	bool http, stopping;
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	char *buffers;
	size_t br_bytes;
	uint16_t next_bid[BUFFERS]; /* echo queues, linked through buffer ids */
	uint32_t bid_len[BUFFERS];
	unsigned recycled;	     /* buffers returned since the last advance */
	struct conn *conns, *starved;
	long inflight; /* SQEs whose last CQE has not arrived */
	int error;     /* set before the start barrier when setup failed */
	pthread_barrier_t *started;
};

static uint64_t tagged(void *ptr, enum tag tag) { return (uint64_t)(uintptr_t)ptr | tag; }

/* The next SQE, submitting what is queued when the SQ is full; counted as in flight. */
static struct io_uring_sqe *sqe_for(struct worker *w, void *ptr, enum tag tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	while (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	w->inflight++;
	io_uring_sqe_set_data64(sqe, tagged(ptr, tag));
	return sqe;
}

static void arm_accept(struct worker *w)
{
	io_uring_prep_multishot_accept(sqe_for(w, NULL, TAG_ACCEPT), w->listen_fd, NULL, NULL, 0);
}

static void arm_recv(struct worker *w, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_for(w, c, TAG_RECV);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUFFER_GROUP;
	c->recv_armed = true;
}

static char *buffer(struct worker *w, uint16_t bid) { return w->buffers + (size_t)bid * BUFFER_SIZE; }

/* Gives buffer `bid` back to the kernel (made visible at the end of the batch). */
static void recycle(struct worker *w, uint16_t bid)
{
	io_uring_buf_ring_add(w->br, buffer(w, bid), BUFFER_SIZE, bid,
			      io_uring_buf_ring_mask(BUFFERS), (int)w->recycled);
	w->recycled++;
}

static void send_bytes(struct worker *w, struct conn *c, const char *data, size_t len)
{
	io_uring_prep_send(sqe_for(w, c, TAG_SEND), c->fd, data, len, MSG_NOSIGNAL);
	c->sending = true;
}

/* Starts the next send of `c` if none is in flight and something waits. */
static void send_next(struct worker *w, struct conn *c)
{
	if (c->sending || w->stopping)
		return;
	if (!w->http) {
		if (c->head != NO_BUFFER)
			send_bytes(w, c, buffer(w, c->head) + c->sent, w->bid_len[c->head] - c->sent);
		return;
	}
	if (c->out[1].len == 0)
		return;
	struct out spare = c->out[0];
	c->out[0] = c->out[1];
	c->out[1] = spare;
	c->out[1].len = 0;
	c->sent = 0;
	send_bytes(w, c, c->out[0].data, c->out[0].len);
}

/* Frees `c` once nothing of it is in flight (it is closing). */
static void release_if_idle(struct worker *w, struct conn *c)
{
	if (!c->closing || c->recv_armed || c->sending)
		return;
	struct conn **at = &w->starved;
	while (c->starved && *at) {
		if (*at == c) {
			*at = c->next_starved;
			c->starved = false;
		} else {
			at = &(*at)->next_starved;
		}
	}
	while (c->head != NO_BUFFER) {
		uint16_t bid = c->head;
		c->head = w->next_bid[bid];
		recycle(w, bid);
	}
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->out[0].data);
	free(c->out[1].data);
	free(c);
}

/* Stops reading `c` and closes it once its sends are done (or failed). */
static void begin_close(struct worker *w, struct conn *c)
{
	if (!c->closing && c->recv_armed)
		io_uring_prep_cancel64(sqe_for(w, NULL, TAG_IGNORE), tagged(c, TAG_RECV), 0);
	c->closing = true;
	release_if_idle(w, c);
}

static bool out_append(struct out *o, const char *data, size_t len)
{
	if (o->cap - o->len < len) {
		size_t cap = o->cap ? o->cap : 1024;
		while (cap - o->len < len)
			cap *= 2;
		char *grown = realloc(o->data, cap);
		if (!grown)
			return false;
		o->data = grown;
		o->cap = cap;
	}
	memcpy(o->data + o->len, data, len);
	o->len += len;
	return true;
}

/* Counts the request heads completed by `data`; false when the connection must close. */
static bool http_input(struct conn *c, const char *data, size_t len)
{
	size_t heads = 0;
	unsigned m = c->match;
	size_t head_len = c->head_len;
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		head_len++;
		if (ch == '\r')
			m = (m == 2) ? 3 : 1;
		else if (ch == '\n' && (m == 1 || m == 3))
			m++;
		else
			m = 0;
		if (m == 4) {
			heads++;
			m = 0;
			head_len = 0;
		}
	}
	c->match = m;
	c->head_len = head_len;
	for (size_t i = 0; i < heads; i++)
		if (!out_append(&c->out[1], RESPONSE, sizeof(RESPONSE) - 1))
			return false;
	if (head_len > MAX_HEAD) {
		out_append(&c->out[1], BAD_REQUEST, sizeof(BAD_REQUEST) - 1);
		return false;
	}
	return true;
}

static void on_recv(struct worker *w, struct conn *c, int res, unsigned flags)
{
	bool more = flags & IORING_CQE_F_MORE;
	if (!more)
		c->recv_armed = false;
	if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
		uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
		if (c->closing || w->stopping) {
			recycle(w, bid);
		} else if (w->http) {
			bool keep = http_input(c, buffer(w, bid), (size_t)res);
			recycle(w, bid);
			send_next(w, c);
			if (!keep)
				begin_close(w, c);
		} else {
			w->bid_len[bid] = (uint32_t)res;
			w->next_bid[bid] = NO_BUFFER;
			if (c->head == NO_BUFFER) {
				c->head = bid;
				c->sent = 0;
			} else {
				w->next_bid[c->tail] = bid;
			}
			c->tail = bid;
			send_next(w, c);
		}
	}
	if (more || c->closing || w->stopping) {
		release_if_idle(w, c);
	} else if (res > 0) {
		arm_recv(w, c); /* the kernel ended the multishot early */
	} else if (res == -ENOBUFS) {
		/* Every buffer is out: re-arm once some come back. */
		c->starved = true;
		c->next_starved = w->starved;
		w->starved = c;
	} else {
		begin_close(w, c); /* end of stream or an error */
	}
}

static void on_send(struct worker *w, struct conn *c, int res)
{
	c->sending = false;
	if (res <= 0) {
		begin_close(w, c);
		return;
	}
	c->sent += (size_t)res;
	if (w->http) {
		if (c->sent < c->out[0].len)
			send_bytes(w, c, c->out[0].data + c->sent, c->out[0].len - c->sent);
		else
			send_next(w, c);
	} else {
		uint16_t bid = c->head;
		if (c->sent >= w->bid_len[bid]) {
			c->head = w->next_bid[bid];
			c->sent = 0;
			recycle(w, bid);
		}
		send_next(w, c);
	}
	release_if_idle(w, c);
}

static void on_accept(struct worker *w, int res, unsigned flags)
{
	if (res >= 0) {
		struct conn *c = w->stopping ? NULL : calloc(1, sizeof(*c));
		if (!c) {
			close(res);
		} else {
			int one = 1;
			setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			c->fd = res;
			c->head = c->tail = NO_BUFFER;
			c->next = w->conns;
			if (w->conns)
				w->conns->prev = c;
			w->conns = c;
			arm_recv(w, c);
		}
	}
	if (flags & IORING_CQE_F_MORE || w->stopping)
		return;
	if (res >= 0) {
		arm_accept(w);
	} else {
		/* EMFILE and the like: try again in a millisecond, as percore's server does. */
		static struct __kernel_timespec ms = {.tv_sec = 0, .tv_nsec = 1000000};
		io_uring_prep_timeout(sqe_for(w, NULL, TAG_RETRY), &ms, 0, 0);
	}
}

static void begin_stop(struct worker *w)
{
	w->stopping = true;
	io_uring_prep_cancel64(sqe_for(w, NULL, TAG_IGNORE), 0,
			       IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
	for (struct conn *c = w->conns; c; c = c->next)
		c->closing = true;
	while (w->starved) {
		struct conn *c = w->starved;
		w->starved = c->next_starved;
		c->starved = false;
	}
}

static void handle(struct worker *w, struct io_uring_cqe *cqe)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);
	struct conn *c = (struct conn *)(uintptr_t)(data & ~(uint64_t)7);
	if (!(cqe->flags & IORING_CQE_F_MORE))
		w->inflight--;
	switch ((enum tag)(data & 7)) {
	case TAG_ACCEPT:
		on_accept(w, cqe->res, cqe->flags);
		break;
	case TAG_RECV:
		on_recv(w, c, cqe->res, cqe->flags);
		break;
	case TAG_SEND:
		on_send(w, c, cqe->res);
		break;
	case TAG_STOP:
		begin_stop(w);
		break;
	case TAG_RETRY:
		if (!w->stopping)
			arm_accept(w);
		break;
	case TAG_IGNORE:
		break;
	}
}

/* Re-arms the connections starved of buffers, now that some came back. */
static void feed_starved(struct worker *w)
{
	while (w->starved) {
		struct conn *c = w->starved;
		w->starved = c->next_starved;
		c->starved = false;
		if (c->closing)
			release_if_idle(w, c);
		else
			arm_recv(w, c);
	}
}

static int setup_ring(struct worker *w)
{
	unsigned modes[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	int ret = -EINVAL;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]) && ret == -EINVAL; i++) {
		struct io_uring_params p = {.flags = modes[i] | IORING_SETUP_CQSIZE,
					    .cq_entries = 2 * RING_ENTRIES};
		ret = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
	}
	if (ret < 0) {
		fprintf(stderr, "c-uring: thread %d: io_uring_queue_init: %s\n", w->index, strerror(-ret));
		return ret;
	}
	io_uring_register_ring_fd(&w->ring); /* optional: older kernels say no */
	w->br_bytes = BUFFERS * sizeof(struct io_uring_buf);
	w->br = mmap(NULL, w->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	w->buffers = mmap(NULL, (size_t)BUFFERS * BUFFER_SIZE, PROT_READ | PROT_WRITE,
			  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (w->br == MAP_FAILED || w->buffers == MAP_FAILED) {
		fprintf(stderr, "c-uring: thread %d: no memory for the buffer ring\n", w->index);
		return -ENOMEM;
	}
	struct io_uring_buf_reg reg = {
		.ring_addr = (uint64_t)(uintptr_t)w->br, .ring_entries = BUFFERS, .bgid = BUFFER_GROUP};
	ret = io_uring_register_buf_ring(&w->ring, &reg, 0);
	if (ret < 0) {
		fprintf(stderr, "c-uring: thread %d: io_uring_register_buf_ring: %s (needs Linux 5.19)\n",
			w->index, strerror(-ret));
		return ret;
	}
	io_uring_buf_ring_init(w->br);
	for (int bid = 0; bid < BUFFERS; bid++)
		recycle(w, (uint16_t)bid);
	io_uring_buf_ring_advance(w->br, (int)w->recycled);
	w->recycled = 0;
	return 0;
}

static void pin(struct worker *w)
{
	if (w->cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	/* Best effort, as the other servers: unpinned is still a correct server. */
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void run_loop(struct worker *w)
{
	while (!w->stopping || w->inflight > 0) {
		int ret;
		if (w->stopping) {
			/* Cancelled requests end at once; a second is a wide margin. */
			struct __kernel_timespec second = {.tv_sec = 1, .tv_nsec = 0};
			struct io_uring_cqe *cqe;
			ret = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &second, NULL);
			if (ret == -ETIME) {
				fprintf(stderr, "c-uring: thread %d: %ld requests did not end\n",
					w->index, w->inflight);
				return;
			}
		} else {
			ret = io_uring_submit_and_wait(&w->ring, 1);
		}
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			fprintf(stderr, "c-uring: thread %d: io_uring_enter: %s\n", w->index, strerror(-ret));
			return;
		}
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			handle(w, cqe);
			seen++;
		}
		io_uring_cq_advance(&w->ring, seen);
		if (w->recycled) {
			io_uring_buf_ring_advance(w->br, (int)w->recycled);
			w->recycled = 0;
			feed_starved(w);
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pin(w);
	w->error = setup_ring(w);
	pthread_barrier_wait(w->started);
	if (w->error)
		return NULL;
	io_uring_prep_poll_add(sqe_for(w, NULL, TAG_STOP), w->stop_fd, POLLIN);
	arm_accept(w);
	run_loop(w);
	while (w->conns) {
		struct conn *c = w->conns;
		c->recv_armed = c->sending = c->starved = false;
		c->closing = true;
		release_if_idle(w, c);
	}
	return NULL;
}

static void free_worker(struct worker *w)
{
	if (w->ring.ring_fd > 0)
		io_uring_queue_exit(&w->ring);
	if (w->br && w->br != MAP_FAILED)
		munmap(w->br, w->br_bytes);
	if (w->buffers && w->buffers != MAP_FAILED)
		munmap(w->buffers, (size_t)BUFFERS * BUFFER_SIZE);
	if (w->listen_fd >= 0)
		close(w->listen_fd);
}

static int parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	if (!colon || (size_t)(colon - text) >= sizeof(host))
		return -1;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	size_t hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) != 1)
			return -1;
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*v6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &v4->sin_addr) != 1)
		return -1;
	v4->sin_family = AF_INET;
	v4->sin_port = htons((uint16_t)port);
	*len = sizeof(*v4);
	return 0;
}

static int bind_listener(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 4096) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* The (first + i)-th CPU this process may run on, or -1. */
static int cpu_for(long first, int i)
{
	cpu_set_t set;
	if (first < 0 || sched_getaffinity(0, sizeof(set), &set) != 0)
		return -1;
	int count = CPU_COUNT(&set);
	if (count == 0)
		return -1;
	int want = (int)((first + i) % count);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && want-- == 0)
			return cpu;
	return -1;
}

/* Until stdin closes (with --control) or a signal: answers `stats` lines with `{}`. */
static void wait_for_stop(int signal_fd, bool control)
{
	char line[256];
	size_t used = 0;
	for (;;) {
		struct pollfd fds[2] = {{.fd = signal_fd, .events = POLLIN},
					{.fd = STDIN_FILENO, .events = POLLIN}};
		if (poll(fds, control ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (fds[0].revents)
			return;
		if (!control || !fds[1].revents)
			continue;
		ssize_t n = read(STDIN_FILENO, line + used, sizeof(line) - 1 - used);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return;
		}
		used += (size_t)n;
		char *nl;
		while ((nl = memchr(line, '\n', used))) {
			*nl = '\0';
			if (strcmp(line, "stats") == 0 || strcmp(line, "stats\r") == 0) {
				fputs("{}\n", stdout);
				fflush(stdout);
			}
			used -= (size_t)(nl + 1 - line);
			memmove(line, nl + 1, used);
		}
		if (used == sizeof(line) - 1)
			used = 0; /* an overlong line is no request */
	}
}

static int usage(const char *why)
{
	fprintf(stderr,
		"c-uring: %s\nusage: c_uring_server echo|http --addr IP:PORT --cores N "
		"[--control] [--first-cpu K]\n",
		why);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "echo") != 0 && strcmp(argv[1], "http") != 0))
		return usage("the first argument is echo or http");
	bool http = strcmp(argv[1], "http") == 0, control = false;
	const char *addr_text = "127.0.0.1:0";
	long cores = 1, first_cpu = -1;
	for (int i = 2; i < argc; i++) {
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		if (strcmp(argv[i], "--control") == 0) {
			control = true;
			continue;
		}
		if (!value)
			return usage("a flag lacks its value");
		if (strcmp(argv[i], "--addr") == 0)
			addr_text = value;
		else if (strcmp(argv[i], "--cores") == 0)
			cores = strtol(value, &end, 10);
		else if (strcmp(argv[i], "--first-cpu") == 0)
			first_cpu = strtol(value, &end, 10);
		else
			return usage("unknown flag");
		if (end && (*end || end == value))
			return usage("--cores and --first-cpu take a number");
		i++;
	}
	if (cores < 1 || cores > 1024 || first_cpu < -1)
		return usage("--cores is 1..=1024, --first-cpu 0 or more");
	struct sockaddr_storage ss;
	socklen_t ss_len;
	if (parse_addr(addr_text, &ss, &ss_len) != 0)
		return usage("--addr is IP:PORT, e.g. 127.0.0.1:0 or [::1]:8080");

	/* Signals are read from a signalfd by this thread; the workers inherit the mask. */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
	int stop_fd = eventfd(0, EFD_CLOEXEC);
	struct worker *workers = calloc((size_t)cores, sizeof(*workers));
	pthread_t *threads = calloc((size_t)cores, sizeof(*threads));
	if (signal_fd < 0 || stop_fd < 0 || !workers || !threads) {
		perror("c-uring: setup");
		return 1;
	}
	int status = 0;
	for (long i = 0; i < cores; i++) {
		workers[i].listen_fd = bind_listener(&ss, ss_len);
		if (workers[i].listen_fd < 0) {
			fprintf(stderr, "c-uring: binding %s: %s\n", addr_text, strerror(errno));
			return 1;
		}
		if (i == 0 && getsockname(workers[0].listen_fd, (struct sockaddr *)&ss, &ss_len) != 0) {
			perror("c-uring: getsockname");
			return 1;
		}
	}
	pthread_barrier_t started;
	pthread_barrier_init(&started, NULL, (unsigned)cores + 1);
	for (long i = 0; i < cores; i++) {
		struct worker *w = &workers[i];
		w->index = (int)i;
		w->http = http;
		w->stop_fd = stop_fd;
		w->cpu = cpu_for(first_cpu, (int)i);
		w->started = &started;
		if (pthread_create(&threads[i], NULL, worker_main, w) != 0) {
			fprintf(stderr, "c-uring: cannot start thread %ld\n", i);
			return 1;
		}
	}
	pthread_barrier_wait(&started);
	for (long i = 0; i < cores; i++)
		if (workers[i].error)
			status = 1;
	if (status == 0) {
		char ip[INET6_ADDRSTRLEN];
		uint16_t port;
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
			port = ntohs(v6->sin6_port);
			printf("c-uring: %s listening on [%s]:%u (%ld cores)\n", argv[1], ip, port, cores);
		} else {
			struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
			port = ntohs(v4->sin_port);
			printf("c-uring: %s listening on %s:%u (%ld cores)\n", argv[1], ip, port, cores);
		}
		fflush(stdout);
		wait_for_stop(signal_fd, control);
	}
	uint64_t one = 1;
	if (write(stop_fd, &one, sizeof(one)) != sizeof(one))
		perror("c-uring: waking the threads");
	for (long i = 0; i < cores; i++) {
		pthread_join(threads[i], NULL);
		free_worker(&workers[i]);
	}
	pthread_barrier_destroy(&started);
	free(workers);
	free(threads);
	close(stop_fd);
	close(signal_fd);
	return status;
}
