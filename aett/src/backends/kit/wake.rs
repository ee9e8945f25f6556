//! In-process wake-ups for followers of the log: every commit this process makes bumps a
//! counter, and each follower waits for it to change.

use futures::StreamExt;
use tokio::sync::watch;

use crate::store::Wakeups;

/// The signal a backend raises after each commit (and deletion) it makes in this process.
#[derive(Debug)]
pub struct CommitSignal(watch::Sender<u64>);

impl Default for CommitSignal {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

impl CommitSignal {
    /// Wakes every follower.
    pub fn raise(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A stream that yields each time the signal is raised after it was made (several raises
    /// between two polls yield once).
    pub fn wakeups(&self) -> Wakeups {
        futures::stream::unfold(self.0.subscribe(), |mut receiver| async move {
            receiver.changed().await.ok()?;
            Some((Ok(()), receiver))
        })
        .boxed()
    }
}
