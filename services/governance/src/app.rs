//! Application layer: governance's state held in memory, rebuilt from the store on start and
//! kept current by reading what was appended since (by this or another instance) before each
//! command and every second in the background. Commands append with the exact version of the
//! stream they were decided on. Gate checks read the state without touching the store.

use std::sync::{Arc, RwLock};

use flotilla_auth::{AccessPolicy, Authorizer};
use flotilla_core::ExpectedVersion;
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore, StoreError};
use tokio::sync::Mutex;

use crate::codec;
use crate::domain::{
    Command, DomainError, Event, GateDecision, Governance, ReleaseEnv, StreamKey, Timestamp,
    ViolationTarget,
};

const PAGE: usize = 5_000;
/// Inbox name of governance's consumers.
pub const CONSUMER: &str = "governance";
/// Risk-validation's event that opens approval requests.
pub const RISK_ASSESSED: &str = "flotilla.risk.v1.RiskAssessed";
/// Monitoring's event that opens rollback decisions.
pub const THRESHOLD_BREACHED: &str = "flotilla.monitoring.v1.RollbackThresholdBreached";
/// The catalog's events governance takes service facts from.
pub const SERVICE_REGISTERED: &str = "flotilla.dependency.v1.ServiceRegistered";
pub const SERVICE_UPDATED: &str = "flotilla.dependency.v1.ServiceUpdated";

/// Errors of the application layer.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored event at position {position} cannot be decoded: {reason}")]
    Decode { position: u64, reason: String },
    #[error("access policy is not valid: {0}")]
    AccessPolicy(String),
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

struct State {
    gov: Governance,
    /// Global position of the last event applied.
    position: u64,
}

/// Governance's state and commands over its store.
pub struct GovernanceApp {
    store: Arc<dyn EventStore>,
    authorizer: Arc<Authorizer>,
    /// The deployment namespace and the key access policy replacements are signed with.
    signer: Option<(String, Arc<flotilla_auth::PolicySigner>)>,
    state: RwLock<State>,
    /// Serialises catch-ups and commands of this instance.
    writer: Mutex<()>,
    /// Set once the state has been rebuilt from the store.
    loaded: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for GovernanceApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernanceApp").finish_non_exhaustive()
    }
}

/// What the deadline scheduler did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeadlineReport {
    pub escalated: u32,
    pub expired: u32,
    pub rollbacks_overdue: u32,
    pub deviations_expired: u32,
}

impl GovernanceApp {
    /// The app over a store; call [`GovernanceApp::catch_up`] (or any command) to load it.
    pub fn new(store: Arc<dyn EventStore>, authorizer: Arc<Authorizer>) -> Self {
        Self {
            store,
            authorizer,
            signer: None,
            state: RwLock::new(State {
                gov: Governance::default(),
                position: 0,
            }),
            writer: Mutex::new(()),
            loaded: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Signs access policy replacements with `signer` for `namespace` (without one, replacing the
    /// access policy is refused).
    pub fn with_signer(
        mut self,
        namespace: &str,
        signer: Option<Arc<flotilla_auth::PolicySigner>>,
    ) -> Self {
        self.signer = signer.map(|s| (namespace.to_owned(), s));
        self
    }

    /// Rebuilds the state from the store if this instance has not done so yet, so no answer is
    /// given from an empty state after a restart.
    pub async fn ensure_loaded(&self) -> Result<()> {
        if self.loaded.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        self.catch_up().await
    }

    fn read_state<T>(&self, f: impl FnOnce(&Governance) -> T) -> T {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        f(&s.gov)
    }

    /// Runs a query on the state as this instance knows it.
    pub fn query<T>(&self, f: impl FnOnce(&Governance) -> T) -> T {
        self.read_state(f)
    }

    /// Applies everything appended since the last catch-up.
    pub async fn catch_up(&self) -> Result<()> {
        let _w = self.writer.lock().await;
        self.catch_up_locked().await
    }

    async fn catch_up_locked(&self) -> Result<()> {
        loop {
            let from = self.read_position() + 1;
            let page = self.store.read_all(from, PAGE).await?;
            let n = page.len();
            let mut decoded = Vec::with_capacity(n);
            for e in page {
                let event =
                    codec::decode(&e.event_type, e.schema_version, &e.payload).map_err(|err| {
                        AppError::Decode {
                            position: e.global_position,
                            reason: err.to_string(),
                        }
                    })?;
                decoded.push((e, event));
            }
            let mut policy_text = None;
            {
                let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
                for (e, event) in decoded {
                    if e.global_position <= s.position {
                        continue;
                    }
                    s.position = e.global_position;
                    let Some(mut event) = event else { continue };
                    if let Event::ApprovalRequestOpened(r) = &mut event {
                        r.opened_by = e.metadata.actor.clone();
                    }
                    // Windows recorded before they carried their creation time: it is when the
                    // event was recorded.
                    if let Event::FreezeWindowCreated(w) = &mut event
                        && w.created_at.0 == 0
                    {
                        w.created_at = e.recorded_at;
                    }
                    match &event {
                        Event::PolicySet { version, .. } => {
                            s.gov
                                .policy_set_by
                                .insert(*version, e.metadata.actor.clone());
                        }
                        Event::AccessPolicyReplaced { .. } => {
                            s.gov.access_policy_replaced_by = e.metadata.actor.clone();
                        }
                        _ => {}
                    }
                    if let Event::AccessPolicyReplaced { policy, .. } = &event {
                        policy_text = Some(policy.clone());
                    }
                    s.gov.evolve(e.stream_id.as_str(), e.stream_version, &event);
                }
            }
            if let Some(text) = policy_text {
                match AccessPolicy::parse(&text) {
                    Ok(p) => self.authorizer.replace(p),
                    Err(e) => {
                        tracing::error!(error = %e, "a recorded access policy does not parse; keeping the one in force")
                    }
                }
            }
            if n < PAGE {
                self.loaded
                    .store(true, std::sync::atomic::Ordering::Release);
                return Ok(());
            }
        }
    }

    fn read_position(&self) -> u64 {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .position
    }

    async fn append(&self, key: &StreamKey, events: Vec<Event>, md: &Metadata) -> Result<()> {
        self.append_consuming(key, events, md, None).await
    }

    /// Appends; with `consumed`, records in the same transaction that this consumer applied
    /// that event, so a redelivery is applied once.
    async fn append_consuming(
        &self,
        key: &StreamKey,
        events: Vec<Event>,
        md: &Metadata,
        consumed: Option<uuid::Uuid>,
    ) -> Result<()> {
        let stream = key.stream_id();
        let expected = match self.read_state(|g| g.versions.get(&stream).copied()) {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(v),
        };
        let stream_id =
            StreamId::parse(&stream).map_err(|e| AppError::Store(StoreError::InvalidAppend(e)))?;
        // The unit the events are about, whoever caused them.
        let mut md = md.clone();
        md.business_unit = self.read_state(|g| g.unit_of(key, &events));
        let md = &md;
        let events = events
            .iter()
            .map(|e| {
                let (ty, bytes) = codec::encode(e);
                NewEvent::new(ty, codec::SCHEMA_VERSION, bytes, md.clone())
            })
            .collect();
        let mut request = AppendRequest::new(stream_id, expected, events);
        if let Some(id) = consumed {
            request = request.consuming(CONSUMER, id);
        }
        self.store.append(request).await?;
        Ok(())
    }

    /// Decides `command` on the current state and appends its events. A segregation-of-duties
    /// refusal of an approval is itself recorded before the error is returned.
    #[tracing::instrument(skip_all, fields(actor = %md.actor))]
    pub async fn execute(&self, command: Command, md: Metadata) -> Result<()> {
        let _w = self.writer.lock().await;
        // A retried command (same command id) is answered from the store: it was applied.
        if let Some(id) = md.command_id
            && self
                .store
                .is_processed(&flotilla_core::store::command_key(id))
                .await?
        {
            return Ok(());
        }
        self.catch_up_locked().await?;
        let violation_context = match &command {
            Command::Approve {
                key, role, by, at, ..
            } => Some((
                ViolationTarget::Request(key.clone()),
                role.clone(),
                by.subject.clone(),
                *at,
            )),
            Command::DecideDeviation {
                id, role, by, at, ..
            } => Some((
                ViolationTarget::Deviation(*id),
                role.clone(),
                by.subject.clone(),
                *at,
            )),
            _ => None,
        };
        let decided = self.read_state(|g| g.decide(command));
        match decided {
            Ok((key, events)) => {
                self.append(&key, events, &md).await?;
                self.catch_up_locked().await?;
                Ok(())
            }
            Err(DomainError::SegregationOfDuties { rule, detail }) => {
                if let Some((target, role, actor, at)) = violation_context {
                    let mut md = md.clone();
                    md.actor = actor;
                    if let Err(e) = self
                        .record_violation_locked(&target, &role, rule, &detail, at, md)
                        .await
                    {
                        tracing::error!(error = %e, rule, "recording a segregation-of-duties violation failed");
                    }
                }
                Err(DomainError::SegregationOfDuties { rule, detail }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records a segregation-of-duties violation that the access policies refused before the
    /// domain saw it, so every violation is in governance's history.
    pub async fn record_violation(
        &self,
        target: &ViolationTarget,
        role: &str,
        rule: &str,
        detail: &str,
        at: Timestamp,
        md: Metadata,
    ) -> Result<()> {
        let _w = self.writer.lock().await;
        self.catch_up_locked().await?;
        self.record_violation_locked(target, role, rule, detail, at, md)
            .await
    }

    async fn record_violation_locked(
        &self,
        target: &ViolationTarget,
        role: &str,
        rule: &str,
        detail: &str,
        at: Timestamp,
        mut md: Metadata,
    ) -> Result<()> {
        let recorded = self.read_state(|g| g.violation(target, &md.actor, role, rule, detail, at));
        if let Some((key, event)) = recorded {
            md.command_id = None;
            self.append(&key, vec![event], &md).await?;
            self.catch_up_locked().await?;
        }
        Ok(())
    }

    /// Applies another service's event (deduplicated by its event id): `RiskAssessed` opens the
    /// approval request, `RollbackThresholdBreached` opens a rollback decision. Returns whether
    /// anything was recorded.
    pub async fn on_event(&self, event: &flotilla_bus::CloudEvent) -> Result<bool> {
        use prost::Message;
        let bad = |reason: String| AppError::Domain(crate::domain::invalid(&event.ty, reason));
        let id = event.event_id().map_err(|e| bad(e.to_string()))?;
        let command = match event.ty.as_str() {
            RISK_ASSESSED => {
                let e = flotilla_proto::risk::v1::RiskAssessed::decode(event.data.as_slice())
                    .map_err(|err| bad(format!("event {} does not decode: {err}", event.id)))?;
                let tier = u8::try_from(e.criticality_tier)
                    .map_err(|_| bad("criticality_tier is out of range".into()))?;
                let risk_score = u8::try_from(e.risk_score)
                    .map_err(|_| bad("risk_score is out of range".into()))?;
                Command::OpenApprovalRequest {
                    id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes()),
                    release: crate::domain::ReleaseFacts {
                        release: e.release,
                        version: e.version,
                        environment: e.environment,
                        service: e.service,
                        business_unit: e.business_unit,
                        tier,
                        risk_score,
                        personal_data: e.handles_personal_data,
                        author: e.author,
                        committers: e.committers,
                    },
                    emergency: e.emergency,
                    authoritative: true,
                    authorized_unit: None,
                    by: crate::domain::Actor {
                        subject: "risk-validation".into(),
                        roles: ["scheduler".to_owned()].into(),
                        business_unit: String::new(),
                    },
                    at: crate::convert::opt_ts("assessed_at", e.assessed_at.as_ref())?
                        .unwrap_or_else(Timestamp::now),
                }
            }
            THRESHOLD_BREACHED => {
                let e = flotilla_proto::monitoring::v1::RollbackThresholdBreached::decode(
                    event.data.as_slice(),
                )
                .map_err(|err| bad(format!("event {} does not decode: {err}", event.id)))?;
                let at = crate::convert::opt_ts("observed_at", e.observed_at.as_ref())?
                    .unwrap_or_else(Timestamp::now);
                Command::OpenRollbackDecision {
                    decision: crate::domain::RollbackDecision {
                        id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes()),
                        release: e.release,
                        environment: e.environment,
                        service: e.service,
                        business_unit: e.business_unit,
                        tier: u8::try_from(e.criticality_tier)
                            .map_err(|_| bad("criticality_tier is out of range".into()))?,
                        metric: e.metric,
                        observed: e.observed,
                        opened_at: at,
                        decide_by: at,
                        notify: Vec::new(),
                        status: crate::domain::RollbackStatus::Pending,
                        overdue: false,
                        decided_by: String::new(),
                        comment: String::new(),
                    },
                }
            }
            SERVICE_REGISTERED | SERVICE_UPDATED => {
                let entry = if event.ty == SERVICE_REGISTERED {
                    flotilla_proto::dependency::v1::ServiceRegistered::decode(event.data.as_slice())
                        .map(|e| e.service)
                } else {
                    flotilla_proto::dependency::v1::ServiceUpdated::decode(event.data.as_slice())
                        .map(|e| e.service)
                }
                .map_err(|err| bad(format!("event {} does not decode: {err}", event.id)))?
                .ok_or_else(|| bad(format!("event {} names no service", event.id)))?;
                Command::RecordCatalogService {
                    service: crate::domain::CatalogService {
                        name: entry.name,
                        business_unit: entry.business_unit,
                        tier: u8::try_from(entry.criticality_tier)
                            .map_err(|_| bad("criticality_tier is out of range".into()))?,
                        personal_data: entry.handles_personal_data,
                        owner_team: entry.owner_team,
                    },
                    source_event_id: id,
                    source_sequence: event.sequence().unwrap_or(0),
                }
            }
            _ => return Ok(false),
        };
        let inbox = flotilla_core::store::inbox_key(CONSUMER, id);
        if self.store.is_processed(&inbox).await? {
            return Ok(false);
        }
        let md = Metadata::by(
            "governance-consumer",
            event.extension("businessunit").unwrap_or_default(),
        )
        .with_causation(id);
        let _w = self.writer.lock().await;
        self.catch_up_locked().await?;
        let (key, events) = self.read_state(|g| g.decide(command))?;
        if events.is_empty() {
            // Nothing new (the catalog said what governance knew): remember it was seen.
            self.store.record_processed(&inbox).await?;
            return Ok(false);
        }
        self.append_consuming(&key, events, &md, Some(id)).await?;
        self.catch_up_locked().await?;
        Ok(true)
    }

    /// Replaces the access policy of every service: checks the Cedar text, refuses a policy
    /// that would lock admins out of replacing it again, records it and puts it in force.
    pub async fn replace_access_policy(
        &self,
        text: &str,
        expected_version: u64,
        at: Timestamp,
        md: Metadata,
    ) -> Result<u64> {
        let policy =
            AccessPolicy::parse(text).map_err(|e| AppError::AccessPolicy(e.to_string()))?;
        let admin = flotilla_auth::Identity::new("lockout-check", ["admin".to_owned()], "central")
            .map_err(|e| AppError::AccessPolicy(e.to_string()))?;
        let keeps_admin = self
            .authorizer
            .evaluate(
                &policy,
                &admin,
                "governance:ReplaceAccessPolicy",
                "",
                &flotilla_auth::AccessContext::default(),
            )
            .map_err(|e| AppError::AccessPolicy(e.to_string()))?;
        if !keeps_admin.allowed {
            return Err(AppError::AccessPolicy(
                "the new policy would stop admins from replacing it again; keep a permit for role admin on governance:ReplaceAccessPolicy".into(),
            ));
        }
        let (namespace, signer) = self.signer.as_ref().ok_or_else(|| {
            AppError::Domain(DomainError::FailedPrecondition(
                "governance has no access_policy_signing_key configured, so other services would not adopt a replacement; configure one (flotilla keys policy-signing --out FILE) and give its public key to the other services as access_policy_verify_keys".into(),
            ))
        })?;
        let sha256 = policy.digest().to_owned();
        let version = expected_version.saturating_add(1);
        let signature = signer
            .sign(namespace, version, &sha256)
            .map_err(|e| AppError::AccessPolicy(e.to_string()))?;
        self.execute(
            Command::ReplaceAccessPolicy {
                policy: text.to_owned(),
                sha256,
                expected_version,
                at,
                signed: crate::domain::PolicySignature {
                    namespace: namespace.clone(),
                    signature,
                    signing_key: signer.public_key(),
                },
            },
            md,
        )
        .await?;
        Ok(self.read_state(|g| g.access_policy.as_ref().map(|p| p.0).unwrap_or(0)))
    }

    /// The gate answer for a release in an environment at a time, and the unit it concerns.
    pub fn check_gate(&self, key: &ReleaseEnv, at: Timestamp) -> (GateDecision, String) {
        self.read_state(|g| {
            (
                g.check_gate(key, at),
                g.business_unit_of(key).unwrap_or_default().to_owned(),
            )
        })
    }

    /// Records everything whose deadline passed by `now`.
    pub async fn process_deadlines(&self, now: Timestamp, md: Metadata) -> Result<DeadlineReport> {
        let _w = self.writer.lock().await;
        self.catch_up_locked().await?;
        let due = self.read_state(|g| g.deadlines(now));
        let mut report = DeadlineReport::default();
        for (key, event) in due {
            match &event {
                Event::ApprovalEscalated { .. } => report.escalated += 1,
                Event::ApprovalRequestExpired { .. } => report.expired += 1,
                Event::RollbackDecisionOverdue { .. } => report.rollbacks_overdue += 1,
                Event::DeviationExpired { .. } => report.deviations_expired += 1,
                _ => {}
            }
            match self.append(&key, vec![event], &md).await {
                Ok(()) => {}
                // Another instance recorded it first: the next catch-up shows it.
                Err(AppError::Store(StoreError::WrongExpectedVersion { .. })) => {}
                Err(e) => return Err(e),
            }
            self.catch_up_locked().await?;
        }
        if report != DeadlineReport::default() {
            tracing::info!(
                escalated = report.escalated,
                expired = report.expired,
                rollbacks_overdue = report.rollbacks_overdue,
                deviations_expired = report.deviations_expired,
                "deadlines processed"
            );
        }
        Ok(report)
    }

    /// Keeps the state current and runs the deadline scheduler on the wall clock until the app
    /// is dropped.
    pub fn spawn_background(app: &Arc<Self>, tick: std::time::Duration) {
        let weak = Arc::downgrade(app);
        tokio::spawn(async move {
            let mut n: u64 = 0;
            loop {
                if n > 0 {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                let Some(app) = weak.upgrade() else { return };
                if let Err(e) = app.catch_up().await {
                    tracing::warn!(error = %e, "governance catch-up failed; retrying");
                    continue;
                }
                n += 1;
                if n.is_multiple_of(tick.as_secs().max(1)) {
                    let md = Metadata::by("governance-scheduler", "");
                    if let Err(e) = app.process_deadlines(Timestamp::now(), md).await {
                        tracing::warn!(error = %e, "deadline processing failed; retrying");
                    }
                }
            }
        });
    }
}
