/* crnn's own small thread pool: runs the parts of one job, part 0 on the calling thread and
 * parts 1..n-1 on worker threads, and returns when all are done. (A job of more than
 * CRNN_POOL_MAX_PARTS parts runs the parts beyond the workers on the calling thread.)
 *
 *     crnn_pool_run(n, fn, ctx)    calls fn(ctx, p) once for each p in 0..n-1
 *
 * Used by the forward kernels to split an inference batch's rows (see _lstm.pyx).
 *
 * - Workers are created lazily, as many as a job needs (at most CRNN_POOL_MAX_PARTS - 1),
 *   and live as long as the process. Each waits for work on its own cache line: a bounded
 *   spin (CRNN_POOL_SPIN_NS, with a pause instruction) after its last part, then it blocks
 *   on a condition variable, so an idle pool takes no core from anyone (OpenBLAS's
 *   threads in a training step, say) a few tens of microseconds after a job, while a job
 *   that follows soon is handed off in well under a microsecond.
 * - One job at a time: a job that finds another thread's job running (a try-lock) runs all
 *   its parts on its own thread, one after another. No deadlock (a part that runs a job of
 *   its own runs it serially too), no more threads busy than one job's parts.
 * - fork: a forked child has none of the parent's workers; pthread_atfork resets the pool
 *   in the child, which creates new workers on its next job.
 * - No environment variable is read or written.
 * - Where there are no POSIX threads (Windows, or CRNN_POOL_SERIAL defined), every part runs
 *   on the calling thread, one after another.
 */
#ifndef CRNN_POOL_H
#define CRNN_POOL_H

typedef void (*crnn_pool_fn)(void *ctx, int part);

#define CRNN_POOL_MAX_PARTS 64

#if defined(_WIN32) || defined(CRNN_POOL_SERIAL) || \
    !(defined(__unix__) || defined(__unix) || defined(__APPLE__)) || \
    !(defined(__GNUC__) || defined(__clang__))

#define CRNN_POOL_THREADED 0

static void crnn_pool_run(int n, crnn_pool_fn fn, void *ctx) {
    int p;
    for (p = 0; p < n; p++)
        fn(ctx, p);
}

static int crnn_pool_workers(void) { return 0; }

#else

#define CRNN_POOL_THREADED 1

#include <pthread.h>
#include <signal.h>
#include <time.h>

/* How long an idle worker spins before it blocks (nanoseconds), and how long the caller
 * spins for the workers' parts before it blocks. */
#define CRNN_POOL_SPIN_NS 40000L

static inline void crnn_pool_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static inline long long crnn_pool_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One worker's mailbox, alone on its cache line: the caller writes the job's number into
 * `want` (release) to give this worker its part; the worker runs it and waits for the next
 * number. */
typedef struct {
    unsigned long want;
    char pad[64 - sizeof(unsigned long)];
} crnn_pool_slot;

static struct {
    pthread_mutex_t job;         /* held by the thread whose job runs (try-lock) */
    pthread_mutex_t m;           /* guards the sleeping workers and the waiting caller */
    pthread_cond_t wake;         /* workers sleep on it */
    pthread_cond_t done;         /* the caller sleeps on it, waiting for the last part */
    int sleeping;                /* workers blocked on `wake` (under m) */
    int caller_waits;            /* the caller blocked on `done` (under m) */
    int n_workers;               /* workers started (under job) */
    unsigned long job_no;        /* the number of the job running or last run (under job) */
    crnn_pool_fn fn;             /* the job: written before the slots' release stores */
    void *ctx;
    int remaining;               /* worker parts not yet done (atomic) */
    crnn_pool_slot slots[CRNN_POOL_MAX_PARTS];
} crnn_pool = {.job = PTHREAD_MUTEX_INITIALIZER, .m = PTHREAD_MUTEX_INITIALIZER,
               .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static pthread_once_t crnn_pool_once = PTHREAD_ONCE_INIT;

/* In a forked child: none of the workers exist there, and a job another parent thread was
 * running is not the child's: start over with no workers (created again on the next job). */
static void crnn_pool_atfork_child(void) {
    int i;
    pthread_mutex_init(&crnn_pool.job, NULL);
    pthread_mutex_init(&crnn_pool.m, NULL);
    pthread_cond_init(&crnn_pool.wake, NULL);
    pthread_cond_init(&crnn_pool.done, NULL);
    crnn_pool.sleeping = 0;
    crnn_pool.caller_waits = 0;
    crnn_pool.n_workers = 0;
    crnn_pool.job_no = 0;
    crnn_pool.fn = NULL;
    crnn_pool.ctx = NULL;
    __atomic_store_n(&crnn_pool.remaining, 0, __ATOMIC_RELAXED);
    for (i = 0; i < CRNN_POOL_MAX_PARTS; i++)
        __atomic_store_n(&crnn_pool.slots[i].want, 0UL, __ATOMIC_RELAXED);
}

static void crnn_pool_register_atfork(void) {
    pthread_atfork(NULL, NULL, crnn_pool_atfork_child);
}

static void *crnn_pool_worker(void *arg) {
    int me = (int)(long)arg;
    crnn_pool_slot *slot = &crnn_pool.slots[me];
    /* a worker's slot is first written after the worker is created (workers start in
     * order, one per slot, and a forked child starts over at 0): nothing seen yet */
    unsigned long seen = 0;
    for (;;) {
        unsigned long want = __atomic_load_n(&slot->want, __ATOMIC_ACQUIRE);
        if (want == seen) {
            /* spin a while, then block */
            long long start = crnn_pool_now_ns();
            int spins = 0;
            while ((want = __atomic_load_n(&slot->want, __ATOMIC_ACQUIRE)) == seen) {
                crnn_pool_pause();
                if (++spins == 64) {
                    spins = 0;
                    if (crnn_pool_now_ns() - start > CRNN_POOL_SPIN_NS)
                        break;
                }
            }
            if (want == seen) {
                pthread_mutex_lock(&crnn_pool.m);
                while ((want = __atomic_load_n(&slot->want, __ATOMIC_ACQUIRE)) == seen) {
                    crnn_pool.sleeping++;
                    pthread_cond_wait(&crnn_pool.wake, &crnn_pool.m);
                    crnn_pool.sleeping--;
                }
                pthread_mutex_unlock(&crnn_pool.m);
            }
        }
        seen = want;
        /* fn and ctx were written before the release store of want read above, and stay
         * until this part is counted done below */
        crnn_pool.fn(crnn_pool.ctx, me);
        if (__atomic_sub_fetch(&crnn_pool.remaining, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&crnn_pool.m);
            if (crnn_pool.caller_waits)
                pthread_cond_signal(&crnn_pool.done);
            pthread_mutex_unlock(&crnn_pool.m);
        }
    }
    return NULL;
}

/* Start workers until there are `want` (under the job lock); returns how many there are
 * (fewer where a thread could not be created). */
static int crnn_pool_grow(int want) {
    sigset_t all, old;
    pthread_attr_t attr;
    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* workers take no signals: they stay with the threads the program knows about */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    while (crnn_pool.n_workers < want) {
        pthread_t thread;
        int me = crnn_pool.n_workers + 1;    /* worker i runs part i */
        if (pthread_create(&thread, &attr, crnn_pool_worker, (void *)(long)me) != 0)
            break;
        crnn_pool.n_workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return crnn_pool.n_workers;
}

static int crnn_pool_workers(void) {
    return crnn_pool.n_workers;
}

static void crnn_pool_run(int n, crnn_pool_fn fn, void *ctx) {
    int p, on_workers, workers;
    if (n <= 1 || pthread_mutex_trylock(&crnn_pool.job) != 0) {
        /* one part, or another thread's job is running: all parts here */
        for (p = 0; p < n; p++)
            fn(ctx, p);
        return;
    }
    pthread_once(&crnn_pool_once, crnn_pool_register_atfork);
    /* parts 1..on_workers on the workers, any beyond them here after part 0 */
    workers = crnn_pool_grow(n - 1 < CRNN_POOL_MAX_PARTS - 1 ? n - 1 : CRNN_POOL_MAX_PARTS - 1);
    on_workers = workers < n - 1 ? workers : n - 1;
    if (on_workers > 0) {
        unsigned long job_no = ++crnn_pool.job_no;
        crnn_pool.fn = fn;
        crnn_pool.ctx = ctx;
        __atomic_store_n(&crnn_pool.remaining, on_workers, __ATOMIC_RELAXED);
        for (p = 1; p <= on_workers; p++)
            __atomic_store_n(&crnn_pool.slots[p].want, job_no, __ATOMIC_RELEASE);
        /* wake sleepers: a worker checks its slot under m before it sleeps */
        pthread_mutex_lock(&crnn_pool.m);
        if (crnn_pool.sleeping)
            pthread_cond_broadcast(&crnn_pool.wake);
        pthread_mutex_unlock(&crnn_pool.m);
    }
    fn(ctx, 0);
    for (p = on_workers + 1; p < n; p++)     /* beyond the workers (or none started) */
        fn(ctx, p);
    if (on_workers > 0 && __atomic_load_n(&crnn_pool.remaining, __ATOMIC_ACQUIRE) != 0) {
        long long start = crnn_pool_now_ns();
        int spins = 0;
        while (__atomic_load_n(&crnn_pool.remaining, __ATOMIC_ACQUIRE) != 0) {
            crnn_pool_pause();
            if (++spins == 64) {
                spins = 0;
                if (crnn_pool_now_ns() - start > CRNN_POOL_SPIN_NS)
                    break;
            }
        }
        if (__atomic_load_n(&crnn_pool.remaining, __ATOMIC_ACQUIRE) != 0) {
            pthread_mutex_lock(&crnn_pool.m);
            while (__atomic_load_n(&crnn_pool.remaining, __ATOMIC_ACQUIRE) != 0) {
                crnn_pool.caller_waits = 1;
                pthread_cond_wait(&crnn_pool.done, &crnn_pool.m);
                crnn_pool.caller_waits = 0;
            }
            pthread_mutex_unlock(&crnn_pool.m);
        }
    }
    pthread_mutex_unlock(&crnn_pool.job);
}

#endif
#endif
