//! The runtime a waiting request runs on: work done for that request alone, or for a
//! batch it waits in, is spawned there.
//!
//! Each gateway worker runs its own single-thread runtime, which stops (SIGTERM) once
//! the worker's own requests are answered, and the tasks on it stop with it. A batch
//! shared by requests of several workers must therefore be driven on the runtime of a
//! request still waiting in it: that runtime cannot stop before the batch has answered.
//! (On a multi-thread runtime every task of it is "here": any of its threads will do.)

use tokio::runtime::{Handle, Id};

/// Where a waiting request's work runs (see the module doc).
#[derive(Clone, Debug)]
pub(super) struct Home {
    runtime: Handle,
    id: Id,
}

impl Home {
    /// The calling task's runtime.
    pub(super) fn here() -> Self {
        let runtime = Handle::current();
        Self {
            id: runtime.id(),
            runtime,
        }
    }

    /// Whether the calling task runs on this home's runtime.
    pub(super) fn is_here(&self) -> bool {
        Handle::try_current().is_ok_and(|h| h.id() == self.id)
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
        assert!(runtime.block_on(async { home.is_here() }));
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
    fn another_runtime_is_not_here_and_any_thread_of_a_multi_thread_one_is() {
        let single = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let home = single.block_on(async { Home::here() });
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(!other.block_on(async { home.is_here() }));
        assert!(!std::thread::spawn(move || home.is_here()).join().unwrap());

        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let home = multi.block_on(async { Home::here() });
        let seen: Vec<bool> = multi.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let home = home.clone();
                    tokio::spawn(async move { home.is_here() })
                })
                .collect();
            let mut seen = Vec::new();
            for task in tasks {
                seen.push(task.await.unwrap());
            }
            seen
        });
        assert_eq!(seen, vec![true; 8]);
    }
}
