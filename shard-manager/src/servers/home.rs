//! The thread a waiting request runs on, and its runtime: work done for that request
//! alone, or for a batch it waits in, is spawned there.
//!
//! A gateway worker stops (SIGTERM) once its own requests are answered, and the tasks
//! on its runtime stop with it. A batch shared by requests of several threads must
//! therefore be driven on the thread of a request still waiting in it: that thread
//! cannot stop before the batch has answered.

use std::thread::ThreadId;

use tokio::runtime::Handle;

/// Where a waiting request's work runs (see the module doc).
#[derive(Clone, Debug)]
pub(super) struct Home {
    runtime: Handle,
    thread: ThreadId,
}

impl Home {
    /// The calling task's thread and runtime.
    pub(super) fn here() -> Self {
        Self {
            runtime: Handle::current(),
            thread: std::thread::current().id(),
        }
    }

    /// Whether the calling task runs on this home's thread.
    pub(super) fn is_here(&self) -> bool {
        self.thread == std::thread::current().id()
    }

    /// Runs `task` on this home's runtime.
    pub(super) fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        drop(self.runtime.spawn(task));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    struct Flag(Arc<AtomicBool>);

    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// What a group's driver relies on (`write_batch::Driving`): a task spawned on a
    /// home whose runtime is gone is dropped at once, so what it owns is released.
    #[test]
    fn a_task_spawned_on_a_home_whose_runtime_is_gone_is_dropped() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let home = runtime.block_on(async { Home::here() });
        assert!(home.is_here());
        drop(runtime);
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Flag(dropped.clone());
        home.spawn(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn another_thread_is_not_here() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let home = runtime.block_on(async { Home::here() });
        let elsewhere = std::thread::spawn(move || home.is_here()).join().unwrap();
        assert!(!elsewhere);
    }
}
