//! Erasing subjects: the erasure is recorded first, then the subject's key destroyed in the
//! keyring. A crash between the two leaves a recorded erasure with a live key; the retention
//! sweep destroys the key of every recorded erasure, so the erasure always completes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_core::event::Metadata;
use flotilla_core::personal::{KeyId, PersonalData};
use flotilla_runtime::kit::{Scheduler, Shutdown};
use futures::FutureExt;
use uuid::Uuid;

use crate::app::{AppError, Ledger};
use crate::domain::{Command, Erasure, Event, SweepRetention, Timestamp};

/// Who the minimisation sweep records as having erased.
pub const SWEEP_ACTOR: &str = "compliance-retention";

/// Erasures and the minimisation sweep, with the deployment's keyring.
pub struct Erasures {
    pub ledger: Arc<Ledger>,
    pub personal: Arc<PersonalData>,
    /// Keys known destroyed (so each sweep does not ask the keyring again).
    destroyed: Mutex<HashSet<Uuid>>,
}

impl std::fmt::Debug for Erasures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Erasures").finish_non_exhaustive()
    }
}

impl Erasures {
    pub fn new(ledger: Arc<Ledger>, personal: Arc<PersonalData>) -> Arc<Self> {
        Arc::new(Self {
            ledger,
            personal,
            destroyed: Mutex::new(HashSet::new()),
        })
    }

    /// Records an erasure (refused while a hold or an obligation keeps the subject's data) and
    /// destroys the key. An erasure recorded before is completed again, not recorded twice.
    pub async fn erase(&self, erasure: Erasure, md: Metadata) -> Result<Erasure, AppError> {
        let subject = erasure.subject;
        self.ledger
            .app()
            .execute(Command::EraseSubject(erasure), md)
            .await?;
        let recorded = self
            .ledger
            .query(|s| s.retention.erasures.get(&subject).cloned())
            .ok_or_else(|| AppError::NotServing("the erasure is not in the state yet".into()))?;
        self.destroy(subject).await.map_err(|e| {
            AppError::NotServing(format!(
                "the erasure is recorded but the keyring is unavailable ({e}); the key is destroyed by the next retention sweep"
            ))
        })?;
        Ok(recorded)
    }

    async fn destroy(&self, subject: Uuid) -> Result<(), String> {
        self.personal
            .erase(KeyId(subject))
            .await
            .map_err(|e| e.to_string())?;
        self.destroyed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(subject);
        Ok(())
    }

    /// One sweep: every recorded erasure's key is destroyed first (finishing any a crash
    /// interrupted, whatever happens next), then subjects due under a minimisation policy are
    /// erased.
    pub async fn sweep(&self, at: Timestamp) -> Result<usize, String> {
        self.finish().await?;
        let md = Metadata::by(SWEEP_ACTOR, "");
        let executed = self
            .ledger
            .app()
            .execute(
                Command::SweepRetention(SweepRetention {
                    by: SWEEP_ACTOR.into(),
                    at,
                }),
                md,
            )
            .await
            .map_err(|e| e.to_string())?;
        let erased = executed
            .events
            .iter()
            .filter(|e| matches!(e, Event::SubjectErased(_)))
            .count();
        self.finish().await?;
        Ok(erased)
    }

    /// Destroys the key of every recorded erasure not known destroyed.
    async fn finish(&self) -> Result<(), String> {
        let pending: Vec<Uuid> = {
            let done = self.destroyed.lock().unwrap_or_else(|p| p.into_inner());
            self.ledger.query(|s| {
                s.retention
                    .erasures
                    .keys()
                    .filter(|k| !done.contains(k))
                    .copied()
                    .collect()
            })
        };
        for subject in pending {
            self.destroy(subject).await?;
        }
        Ok(())
    }

    /// Sweeps every `every` until shutdown.
    pub fn task(self: Arc<Self>, every: Duration) -> Scheduler {
        Arc::new(move |mut shutdown: Shutdown| {
            let this = self.clone();
            async move {
                let mut clock = tokio::time::interval(every);
                clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = clock.tick() => {}
                        _ = shutdown.wait() => return,
                    }
                    match this.sweep(Timestamp::now()).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(erased = n, "retention sweep erased subjects past their minimisation limit"),
                        Err(e) => tracing::warn!(error = %e, "the retention sweep failed; trying again at the next tick"),
                    }
                }
            }
            .boxed()
        })
    }
}
