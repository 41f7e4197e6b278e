//! The tasks query handlers run on.
//!
//! Every query runs on a task of its own, so a handler that works (or even
//! blocks its thread) before its first `.await` holds up neither publishes
//! nor other queries, and the connection's dispatcher owns those tasks (its
//! [`JoinSet`]) to stop them when the connection ends for good.
//!
//! Spawning a task for every query was measured to be the largest cost of a
//! query (tokio's task cell is one over-aligned allocation, the future is
//! moved into it, the set tracks it: about 7,000 instructions of the 22,500
//! a `rows` query took, callgrind). So a task that has run its query is
//! kept, idle, for the next one: the dispatcher hands a query to an idle
//! task through that task's own one-place channel and spawns a new task only
//! when none is idle. A source keeps at most [`MAX_IDLE`] idle tasks (after
//! a burst of concurrent queries); a task beyond that ends with its query.
//! Idle tasks end by themselves when the dispatcher ends.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

/// How many idle query tasks a source keeps at most.
pub(crate) const MAX_IDLE: usize = 64;

/// One query (`J`: what the runner needs of it) for a task to run, with the
/// sender the task is reached by (it gives it back to the idle list when it
/// is done).
struct Job<J> {
    query: J,
    slot: mpsc::Sender<Job<J>>,
}

/// The idle tasks, each as the sender its next query goes through.
type Idle<J> = Arc<Mutex<Vec<mpsc::Sender<Job<J>>>>>;

/// The query tasks of one dispatcher.
pub(crate) struct QueryTasks<J, R> {
    set: JoinSet<()>,
    idle: Idle<J>,
    runner: R,
}

impl<J, R, F> QueryTasks<J, R>
where
    J: Send + 'static,
    R: Fn(J) -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    /// Query tasks that run each query with `runner`.
    pub(crate) fn new(runner: R) -> Self {
        QueryTasks {
            set: JoinSet::new(),
            idle: Arc::default(),
            runner,
        }
    }

    /// Runs one query on an idle task, or on a new one.
    pub(crate) fn run(&mut self, query: J) {
        // Ended tasks (beyond the idle limit, or stopped) are removed here,
        // so the set does not grow.
        while self.set.try_join_next().is_some() {}
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let query = match idle {
            Some(slot) => {
                let job = Job {
                    query,
                    slot: slot.clone(),
                };
                match slot.try_send(job) {
                    Ok(()) => return,
                    // The task is gone (it cannot be while it is on the idle
                    // list, but a new task does the job as well).
                    Err(e) => e.into_inner().query,
                }
            }
            None => query,
        };
        let (slot, inbox) = mpsc::channel(1);
        let first = Job { query, slot };
        let task = serve(self.runner.clone(), self.idle.clone(), inbox, first);
        self.set.spawn(task.in_current_span());
    }

    /// How many queries are running (tasks that are not idle).
    pub(crate) fn running(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.set.len().saturating_sub(idle)
    }

    /// Stops every task: the queries still running are abandoned (their
    /// answers would be refused by now), the idle tasks end.
    pub(crate) async fn shutdown(&mut self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.set.shutdown().await;
    }
}

/// One query task: runs its query, then waits on the idle list for the next
/// one; ends when the idle list is full or the dispatcher has ended.
async fn serve<J, R, F>(runner: R, idle: Idle<J>, mut inbox: mpsc::Receiver<Job<J>>, first: Job<J>)
where
    R: Fn(J) -> F,
    F: Future<Output = ()>,
{
    let mut job = first;
    loop {
        let Job { query, slot } = job;
        runner(query).await;
        {
            let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() >= MAX_IDLE {
                return;
            }
            idle.push(slot);
        }
        // `None` once the dispatcher has dropped the idle list (and with it
        // this task's sender).
        match inbox.recv().await {
            Some(next) => job = next,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Semaphore;

    /// Query tasks whose queries wait for a permit of `gate`, counting the
    /// queries run in `done`.
    fn tasks(
        gate: &Arc<Semaphore>,
        done: &Arc<AtomicUsize>,
    ) -> QueryTasks<u32, impl Fn(u32) -> futures_util::future::BoxFuture<'static, ()> + Clone> {
        let (gate, done) = (gate.clone(), done.clone());
        QueryTasks::new(move |_: u32| {
            let (gate, done) = (gate.clone(), done.clone());
            Box::pin(async move {
                gate.acquire().await.expect("open").forget();
                done.fetch_add(1, Ordering::SeqCst);
            }) as futures_util::future::BoxFuture<'static, ()>
        })
    }

    async fn until(what: impl Fn() -> bool) {
        while !what() {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn concurrent_queries_each_get_a_task_and_the_tasks_are_kept_for_the_next() {
        let (gate, done) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = tasks(&gate, &done);
        // 100 queries waiting at once: 100 tasks, none idle.
        for i in 0..100 {
            tasks.run(i);
        }
        assert_eq!(tasks.set.len(), 100);
        until(|| tasks.running() == 100).await;
        gate.add_permits(100);
        until(|| done.load(Ordering::SeqCst) == 100).await;
        // At most MAX_IDLE are kept; the others end.
        until(|| tasks.idle.lock().unwrap().len() == MAX_IDLE).await;
        while tasks.set.len() > MAX_IDLE {
            tasks.set.join_next().await;
        }
        assert_eq!(tasks.running(), 0);
        // The next queries reuse them: no task is spawned.
        for i in 0..MAX_IDLE as u32 {
            tasks.run(i);
        }
        assert_eq!(tasks.set.len(), MAX_IDLE);
        gate.add_permits(MAX_IDLE);
        until(|| done.load(Ordering::SeqCst) == 100 + MAX_IDLE).await;
        // One more than the idle ones: one new task.
        until(|| tasks.idle.lock().unwrap().len() == MAX_IDLE).await;
        for i in 0..=MAX_IDLE as u32 {
            tasks.run(i);
        }
        assert_eq!(tasks.set.len(), MAX_IDLE + 1);
        gate.add_permits(MAX_IDLE + 1);
        until(|| done.load(Ordering::SeqCst) == 100 + 2 * MAX_IDLE + 1).await;
    }

    #[tokio::test]
    async fn idle_tasks_end_when_the_tasks_are_dropped_and_running_ones_are_stopped() {
        let (gate, done) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = tasks(&gate, &done);
        for i in 0..3 {
            tasks.run(i);
        }
        gate.add_permits(2);
        until(|| done.load(Ordering::SeqCst) == 2).await;
        until(|| tasks.running() == 1).await;
        // Dropping the idle list ends the idle tasks by themselves.
        let idle_senders = std::mem::take(&mut *tasks.idle.lock().unwrap());
        assert_eq!(idle_senders.len(), 2);
        drop(idle_senders);
        let mut ended = 0;
        while ended < 2 {
            tasks
                .set
                .join_next()
                .await
                .expect("a task")
                .expect("ended, not stopped");
            ended += 1;
        }
        // The one still running is stopped by shutdown.
        assert_eq!(tasks.set.len(), 1);
        tasks.shutdown().await;
        assert!(tasks.set.is_empty());
        gate.add_permits(1);
        tokio::task::yield_now().await;
        assert_eq!(
            done.load(Ordering::SeqCst),
            2,
            "the stopped query did not go on"
        );
    }
}
