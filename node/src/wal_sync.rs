//! The write-ahead-log syncer: a thread that makes committed blocks durable while consensus goes
//! on with the next height, and only then announces them.
//!
//! [`Store::commit_block`] writes a block without waiting for the disk. The driver signals the
//! syncer ([`WalSyncer::committed`]), which syncs the write-ahead log ([`Store::sync_wal`]) and
//! then sends the durable height on the node's commit notices, which `SubmitAndWait` and
//! `StreamBlocks` wait on. So the 15 to 45 ms of a synced write leave every height's critical
//! path, and a client still hears of a commit only once it survives a power cut.
//!
//! A failed sync stops the node: the failure is reported to the driver, which returns it.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc};
use tracing::error;

use crate::storage::Store;

/// Syncs the write-ahead log after commits, on a thread of its own.
pub struct WalSyncer {
    /// Signals a commit to make durable; `None` once stopping.
    signal: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WalSyncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalSyncer").finish_non_exhaustive()
    }
}

impl WalSyncer {
    /// Starts the thread. After each sync it sends the durable height on `commits`; a failed
    /// sync is sent on `failed` and ends the thread.
    pub fn start(
        store: Arc<Store>,
        commits: broadcast::Sender<u64>,
        failed: mpsc::Sender<String>,
    ) -> std::io::Result<Self> {
        // One pending signal is enough: the sync it causes reads the tip when it starts, so it
        // covers every commit made before then.
        let (signal, signals) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("yrd-wal-sync".into())
            .spawn(move || {
                while signals.recv().is_ok() {
                    match store.sync_wal() {
                        // Nobody listening is fine.
                        Ok(height) => drop(commits.send(height)),
                        Err(failure) => {
                            error!(%failure, "the write-ahead log could not be synced");
                            // The driver may already be gone; then the node is stopping anyway.
                            let _ = failed.try_send(failure.to_string());
                            return;
                        }
                    }
                }
            })?;
        Ok(Self {
            signal: Some(signal),
            thread: Some(thread),
        })
    }

    /// Asks for the blocks committed so far to be made durable and then announced. Never
    /// blocks: if a sync is already pending, it covers them.
    pub fn committed(&self) {
        if let Some(signal) = &self.signal {
            // Full: a pending sync covers these commits. Disconnected: the thread ended after a
            // failed sync, which the driver is being told of.
            let _ = signal.try_send(());
        }
    }
}

impl Drop for WalSyncer {
    /// Stops the thread after it has synced every commit it was told of.
    fn drop(&mut self) {
        self.signal = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("the write-ahead-log sync thread panicked");
            }
        }
    }
}
