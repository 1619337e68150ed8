//! Compliance's app: the kit's event-sourced app over the ledger. One instance per process
//! serves the gRPC edge, the consumers of the five other services' events and the scheduler
//! that signs checkpoints and alerts gaps.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use flotilla_core::decider::Decision;
use flotilla_core::event::Metadata;
use flotilla_runtime::kit::{
    self, App, AppOptions, Scheduler, Shutdown, Snapshotted, Task, UnitOf,
};
use flotilla_runtime::{Consumer, ServiceContext};
use flotilla_transparency::checkpoint::Checkpoint as TlogCheckpoint;
use flotilla_transparency::note::{NoteSigner, NoteVerifier};
use futures::FutureExt;
use serde::Deserialize;
use tonic::service::RoutesBuilder;

use crate::codec::ComplianceEvents;
use crate::domain::*;

pub type AppError = kit::AppError<DomainError>;

/// File under the data folder holding the checkpoint key when none is configured.
pub const GENERATED_KEY_FILE: &str = "ledger-checkpoint.key";

/// `[compliance]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The checkpoints' origin line and signer name (default `flotilla/<namespace>/ledger`).
    pub origin: Option<String>,
    /// A file holding the base64 32-byte Ed25519 seed checkpoints are signed with (`flotilla
    /// keys ledger-checkpoint` makes one); unset: one is made under the data folder.
    pub checkpoint_key: Option<PathBuf>,
    /// How often a checkpoint is signed when the ledger grew (default 10 s).
    pub checkpoint_secs: Option<u64>,
    /// How long missing positions may wait before they are alerted as a gap (default 60 s).
    pub gap_grace_secs: Option<u64>,
    /// Events between snapshots (default 0: the ledger rebuilds from its events).
    pub snapshot_every: Option<u64>,
    /// How often the retention sweep runs (GDPR minimisation, finishing erasures), in seconds
    /// (default 3600).
    pub retention_sweep_secs: Option<u64>,
}

/// The services whose events the ledger takes.
pub const SOURCES: [&str; 5] = [
    "governance",
    "dependency-mapping",
    "orchestration",
    "risk-validation",
    "monitoring",
];

impl UnitOf for Compliance {
    fn unit_of(&self, decision: &Decision<Event>) -> Option<String> {
        decision.events.iter().find_map(|e| match e {
            Event::Ledgered(l) => Some(l.event.metadata.business_unit.clone()),
            Event::LegalHoldPlaced(h) => Some(h.data_class.business_unit.clone()),
            Event::RetentionPolicySet(p) => Some(p.data_class.business_unit.clone()),
            Event::AlertRaised(_)
            | Event::CheckpointSigned(_)
            | Event::LegalHoldReleased(_)
            | Event::SubjectErased(_) => None,
        })
    }
}

impl Snapshotted for Compliance {
    const SNAPSHOT_VERSION: u32 = 1;
}

/// The ledger with the key that signs its checkpoints.
pub struct Ledger {
    app: Arc<App<Compliance>>,
    signer: NoteSigner,
    pub grace: Duration,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("origin", &self.signer.name)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    pub fn query<T>(&self, f: impl FnOnce(&Compliance) -> T) -> T {
        self.app.query(f)
    }

    pub fn app(&self) -> &Arc<App<Compliance>> {
        &self.app
    }

    /// The checkpoints' origin.
    pub fn origin(&self) -> &str {
        &self.signer.name
    }

    /// The key a checkpoint is checked with (C2SP verifier key).
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// Takes an event a service published.
    pub async fn take(&self, event: SourceEvent, now: Timestamp) -> Result<(), AppError> {
        let md = Metadata::by("compliance-ledger", event.metadata.business_unit.clone());
        self.app
            .execute(Command::Ledger(Box::new(LedgerEvent { event, now })), md)
            .await
            .map(|_| ())
    }

    /// Signs a checkpoint of the ledger as it is (the newest one when it did not grow).
    pub async fn sign(&self, md: Metadata) -> Result<Checkpoint, AppError> {
        if let Some(same) = self.query(|s| {
            s.newest_checkpoint()
                .filter(|c| c.size == s.tree.size() as u64)
                .cloned()
        }) {
            return Ok(same);
        }
        self.app
            .execute_with(
                |s| {
                    let size = s.tree.size();
                    if size == 0 {
                        return Err(DomainError::FailedPrecondition(
                            "the ledger is empty: nothing to sign yet".into(),
                        ));
                    }
                    let root = s
                        .tree
                        .root(size)
                        .map_err(|e| DomainError::FailedPrecondition(e.to_string()))?;
                    let note = TlogCheckpoint {
                        origin: self.signer.name.clone(),
                        size: size as u64,
                        root,
                        extensions: Vec::new(),
                    }
                    .sign(&self.signer)
                    .map_err(|e| DomainError::FailedPrecondition(e.to_string()))?;
                    Ok(Command::RecordCheckpoint(RecordCheckpoint {
                        checkpoint: Checkpoint {
                            size: size as u64,
                            root,
                            note,
                            signed_at: Timestamp::now(),
                        },
                    }))
                },
                md,
            )
            .await?;
        self.query(|s| s.newest_checkpoint().cloned())
            .ok_or_else(|| AppError::NotServing("the checkpoint is not in the state yet".into()))
    }

    /// Signs a checkpoint every `every` when the ledger grew, and alerts gaps that waited past
    /// their grace.
    fn scheduler(self: Arc<Self>, every: Duration) -> Scheduler {
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
                    let md = || Metadata::by("compliance-scheduler", "");
                    let grace = this.grace.as_micros() as i64;
                    let now = Timestamp::now();
                    let (grew, gaps) = this.query(|s| {
                        (
                            s.tree.size() as u64 > s.newest_checkpoint().map_or(0, |c| c.size),
                            s.sources.values().any(|c| !c.due_gaps(now, grace).is_empty()),
                        )
                    });
                    if gaps {
                        let c = Command::CheckGaps(CheckGaps {
                            now,
                            grace_micros: grace,
                        });
                        if let Err(e) = this.app.execute(c, md()).await {
                            tracing::warn!(error = %e, "checking the ledger's gaps failed; trying again at the next tick");
                        }
                    }
                    if grew && let Err(e) = this.sign(md()).await {
                        tracing::warn!(error = %e, "signing a checkpoint failed; trying again at the next tick");
                    }
                }
            }
            .boxed()
        })
    }
}

/// The checkpoint signer: the configured key, else one kept under the data folder.
fn signer(ctx: &ServiceContext, settings: &Settings) -> Result<NoteSigner, String> {
    let origin = settings
        .origin
        .clone()
        .unwrap_or_else(|| format!("flotilla/{}/ledger", ctx.namespace()));
    let key = match &settings.checkpoint_key {
        Some(path) => read_seed(path)?,
        None => {
            let path = ctx.data_dir.join(GENERATED_KEY_FILE);
            let key = flotilla_runtime::access::kept_key(&path)
                .map_err(|e| e.to_string())?
                .seed();
            tracing::warn!(
                path = %path.display(),
                "[compliance] checkpoint_key is not set: checkpoints are signed with a key kept in the data folder"
            );
            key
        }
    };
    let signer = NoteSigner::new(&origin, &key).map_err(|e| format!("origin {origin:?}: {e}"))?;
    tracing::info!(origin = %origin, verifier_key = %signer.verifier().encode(), "ledger checkpoints are signed");
    Ok(signer)
}

fn read_seed(path: &Path) -> Result<[u8; 32], String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read checkpoint_key {}: {e}", path.display()))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| format!("checkpoint_key {} is not base64", path.display()))?;
    <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| {
        format!(
            "checkpoint_key {} holds {} bytes, not a 32-byte Ed25519 seed",
            path.display(),
            raw.len()
        )
    })
}

impl Ledger {
    /// Opens the ledger over a service context: its checkpoint signer and its state rebuilt;
    /// the task keeps it current (run it under the node's shutdown).
    pub async fn open(
        ctx: &ServiceContext,
        settings: &Settings,
    ) -> Result<(Arc<Self>, Task), String> {
        let signer = signer(ctx, settings)?;
        let options = AppOptions {
            snapshot_every: settings.snapshot_every.unwrap_or(0),
            ..AppOptions::default()
        };
        let (app, follower) = App::builder(ctx, Arc::new(ComplianceEvents))
            .options(options)
            .start()
            .await
            .map_err(|e| e.to_string())?;
        let ledger = Arc::new(Ledger {
            app,
            signer,
            grace: Duration::from_secs(settings.gap_grace_secs.unwrap_or(60)),
        });
        Ok((ledger, follower))
    }
}

/// Builds compliance for the node: the ledger, its routes, its consumers and its scheduler.
pub async fn start(
    ctx: ServiceContext,
    routes: &mut RoutesBuilder,
) -> Result<kit::Started, kit::StartError> {
    let fail = |e: String| kit::StartError::new(crate::NAME, e);
    let settings: Settings = ctx.section().map_err(|e| fail(e.to_string()))?;
    let (ledger, follower) = Ledger::open(&ctx, &settings).await.map_err(fail)?;
    let erasures = crate::erasure::Erasures::new(ledger.clone(), ctx.personal.clone());
    routes.add_service(crate::grpc::server(
        ctx.clone(),
        ledger.clone(),
        erasures.clone(),
    ));
    let every = Duration::from_secs(settings.checkpoint_secs.unwrap_or(10).max(1));
    let sweep = Duration::from_secs(settings.retention_sweep_secs.unwrap_or(3600).max(1));
    let started = kit::Started::with_app(follower)
        .scheduled(ledger.clone().scheduler(every))
        .scheduled(erasures.task(sweep));
    Ok(SOURCES.iter().fold(started, |started, source| {
        started.consume(Consumer {
            source: (*source).into(),
            handler: Arc::new(crate::inbound::Ledgering {
                ledger: ledger.clone(),
                service: source,
            }),
        })
    }))
}
