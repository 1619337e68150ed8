//! Governance's app: the kit's event-sourced app over its store, and what is governance's own.
//!
//! - A refused attempt that broke segregation of duties is itself recorded.
//! - Access policy replacements are checked (Cedar, no lockout of admins), signed for the
//!   deployment and put in force in this process once recorded.
//! - Deadlines are processed on the wall clock (`[governance] deadline_tick_secs`).
//!
//! One instance per process serves the gRPC edge, the consumers and the scheduler.

use std::sync::Arc;
use std::time::Duration;

use flotilla_auth::{AccessPolicy, Authorizer, PolicySigner};
use flotilla_core::decider::{Decision, Recorded};
use flotilla_core::event::Metadata;
use flotilla_runtime::kit::{
    self, App, Executed, Observer, Scheduler, Shutdown, Snapshotted, Task, UnitOf,
};
use flotilla_runtime::{Consumer, ServiceContext};
use futures::FutureExt;
use tonic::service::RoutesBuilder;

use crate::codec::GovernanceEvents;
use crate::domain::*;

/// What governance's app answers when something fails.
pub type AppError = kit::AppError<DomainError>;

/// Inbox name of governance's consumers.
pub const CONSUMER: &str = "governance";
/// How often the deadline scheduler runs unless `[governance] deadline_tick_secs` says.
pub const DEADLINE_TICK_SECS: u64 = 30;

impl UnitOf for Governance {
    /// Events carry the unit of what they are about, whoever caused them.
    fn unit_of(&self, decision: &Decision<Event>) -> Option<String> {
        Some(self.unit_of_events(&decision.events))
    }
}

impl Snapshotted for Governance {
    /// 2: the state gained FMEA actions per release (issue 11); older snapshots are replayed past.
    const SNAPSHOT_VERSION: u32 = 2;
}

/// What the deadline scheduler did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeadlineReport {
    pub escalated: u32,
    pub expired: u32,
    pub rollbacks_overdue: u32,
    pub deviations_expired: u32,
}

/// Governance's state and commands over its store.
pub struct GovernanceApp {
    app: Arc<App<Governance>>,
    authorizer: Arc<Authorizer>,
    /// The deployment namespace and the key replacements are signed with.
    signer: Option<(String, Arc<PolicySigner>)>,
    /// The gate's denials answered here (a metric).
    denials: crate::gauges::GateDenials,
}

impl std::fmt::Debug for GovernanceApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernanceApp")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// Puts each recorded access policy replacement in force in this process (unless a newer one
/// already is).
struct PolicyInForce {
    authorizer: Arc<Authorizer>,
    version: Arc<std::sync::atomic::AtomicU64>,
}

impl Observer<Event> for PolicyInForce {
    fn applied(&self, e: &Recorded<Event>) {
        let Event::AccessPolicyReplaced {
            policy, version, ..
        } = &e.event
        else {
            return;
        };
        match AccessPolicy::parse(policy) {
            Ok(p) => {
                flotilla_runtime::access::put_in_force(
                    &self.authorizer,
                    &self.version,
                    *version,
                    p,
                );
            }
            Err(err) => {
                tracing::error!(version, error = %err, "a recorded access policy does not parse; keeping the one in force")
            }
        }
    }
}

/// Builds governance for the node: the app (state rebuilt), its routes, its consumers and
/// its tasks.
pub async fn start(
    ctx: ServiceContext,
    routes: &mut RoutesBuilder,
) -> Result<kit::Started, kit::StartError> {
    let tick = ctx
        .section_value::<u64>("deadline_tick_secs")
        .unwrap_or(DEADLINE_TICK_SECS)
        .max(1);
    let (app, follower) = GovernanceApp::start(&ctx).await?;
    routes.add_service(crate::grpc::server(ctx, app.clone()));
    let mut started = kit::Started::with_app(follower)
        .scheduled(app.clone().deadlines_every(Duration::from_secs(tick)))
        .gauges(crate::gauges::of(app.clone()));
    // Risk assessments open approval requests; threshold breaches open rollback decisions; the
    // catalog's services give approval requests their unit, tier and personal-data facts.
    for source in ["risk-validation", "monitoring", "dependency-mapping"] {
        started = started.consume(Consumer {
            source: source.into(),
            handler: Arc::new(crate::inbound::Inbound::new(app.clone())),
        });
    }
    Ok(started)
}

impl GovernanceApp {
    /// Rebuilds governance's state from its store; the task keeps it current.
    pub async fn start(ctx: &ServiceContext) -> Result<(Arc<Self>, Task), kit::StartError> {
        let (app, follower) = App::builder(ctx, Arc::new(GovernanceEvents))
            .observe(Arc::new(PolicyInForce {
                authorizer: ctx.authorizer.clone(),
                version: ctx.policy_in_force.clone(),
            }))
            .start()
            .await
            .map_err(|e| kit::StartError::new(crate::NAME, e))?;
        let signer = ctx
            .policy_signer
            .clone()
            .map(|s| (ctx.namespace().to_owned(), s));
        let this = Arc::new(Self {
            app,
            authorizer: ctx.authorizer.clone(),
            signer,
            denials: Default::default(),
        });
        Ok((this, follower))
    }

    /// Runs a query on the current state, without locks or store reads.
    pub fn query<T>(&self, f: impl FnOnce(&Governance) -> T) -> T {
        self.app.query(f)
    }

    /// Decides a command and records its events. A refusal for segregation of duties is itself
    /// recorded (on the request's or deviation's stream) before it is answered.
    #[tracing::instrument(skip_all, fields(actor = %md.actor))]
    pub async fn execute(
        &self,
        command: impl Into<Command>,
        md: Metadata,
    ) -> Result<Executed<Event>, AppError> {
        let command = command.into();
        let attempt = violation_of(&command);
        let result = self.app.execute(command, md.clone()).await;
        if let (
            Err(kit::AppError::Domain(DomainError::SegregationOfDuties { rule, detail })),
            Some((target, role, actor, at)),
        ) = (&result, attempt)
        {
            let attempt = RecordViolation {
                target,
                actor,
                role,
                rule: (*rule).to_owned(),
                detail: detail.clone(),
                at,
            };
            self.record_violation(attempt, md).await;
        }
        result
    }

    /// Records a refused attempt that broke segregation of duties (failing to record it is
    /// logged; the refusal is answered either way).
    pub async fn record_violation(&self, attempt: RecordViolation, mut md: Metadata) {
        // Not the command's own id: a retry of the refused command is refused again.
        md.command_id = None;
        md.actor = attempt.actor.clone();
        let rule = attempt.rule.clone();
        if let Err(e) = self.app.execute(attempt.into(), md).await {
            tracing::error!(error = %e, rule, "recording a segregation-of-duties violation failed");
        }
    }

    /// Applies another service's event (once, by its id). Returns whether anything was
    /// recorded.
    pub async fn on_event(&self, event: &flotilla_bus::CloudEvent) -> Result<bool, AppError> {
        let Some((id, command)) =
            crate::inbound::command_of(event).map_err(kit::AppError::Domain)?
        else {
            return Ok(false);
        };
        let md = Metadata::by(
            "governance-consumer",
            event.extension("businessunit").unwrap_or_default(),
        )
        .with_causation(id);
        let done = self.app.consume(CONSUMER, id, command, md).await?;
        Ok(!done.events.is_empty())
    }

    /// Replaces the access policy of every service: checks the Cedar text, refuses a policy
    /// that would lock admins out of replacing it again, signs it for this deployment, records
    /// it (which puts it in force here) and answers its version.
    pub async fn replace_access_policy(
        &self,
        text: &str,
        expected_version: u64,
        at: Timestamp,
        md: Metadata,
    ) -> Result<u64, AppError> {
        let bad = |e: String| kit::AppError::Domain(invalid("policy", e));
        let policy = AccessPolicy::parse(text).map_err(|e| bad(e.to_string()))?;
        let admin = flotilla_auth::Identity::new("lockout-check", [ADMIN.to_owned()], "central")
            .map_err(|e| bad(e.to_string()))?;
        let keeps_admin = self
            .authorizer
            .evaluate(
                &policy,
                &admin,
                "governance:ReplaceAccessPolicy",
                "",
                &flotilla_auth::AccessContext::default(),
            )
            .map_err(|e| bad(e.to_string()))?;
        if !keeps_admin.allowed {
            return Err(bad(
                "the new policy would stop admins from replacing it again; keep a permit for role admin on governance:ReplaceAccessPolicy".into(),
            ));
        }
        let (namespace, signer) = self.signer.as_ref().ok_or_else(|| {
            kit::AppError::Domain(DomainError::FailedPrecondition(
                "governance has no access_policy_signing_key configured, so other services would not adopt a replacement; configure one (flotilla keys policy-signing --out FILE) and give its public key to the other services as access_policy_verify_keys".into(),
            ))
        })?;
        let sha256 = policy.digest().to_owned();
        let version = expected_version.saturating_add(1);
        let signature = signer
            .sign(namespace, version, &sha256)
            .map_err(|e| bad(e.to_string()))?;
        let command = ReplaceAccessPolicy {
            policy: text.to_owned(),
            sha256,
            expected_version,
            at,
            signed: PolicySignature {
                namespace: namespace.clone(),
                signature,
                signing_key: signer.public_key(),
            },
        };
        self.execute(command, md).await?;
        Ok(self.query(|g| g.access_policy.as_ref().map_or(0, |p| p.0)))
    }

    /// The gate answer for a release in an environment at a time, and the unit it concerns.
    pub fn check_gate(
        &self,
        key: &ReleaseEnv,
        at: Timestamp,
        emergency: Option<bool>,
    ) -> (GateDecision, String) {
        self.query(|g| {
            (
                g.check_gate_as(key, at, emergency),
                g.business_unit_of(key).unwrap_or_default().to_owned(),
            )
        })
    }

    /// The gate's denials this process answered (counted by the edge once the caller may see
    /// them).
    pub fn denials(&self) -> &crate::gauges::GateDenials {
        &self.denials
    }

    /// Records everything whose deadline passed by `now`, one aggregate at a time (each decided
    /// on the state as it is then, so what another instance recorded is not recorded again).
    pub async fn process_deadlines(
        &self,
        now: Timestamp,
        mut md: Metadata,
    ) -> Result<DeadlineReport, AppError> {
        // Many appends: none carries the call's command id (a retry finds nothing left to do).
        md.command_id = None;
        let mut report = DeadlineReport::default();
        for key in self.query(|g| g.due(now)) {
            let done = self
                .execute(RecordDeadline { key, now }, md.clone())
                .await?;
            for e in &done.events {
                match e {
                    Event::ApprovalEscalated { .. } => report.escalated += 1,
                    Event::ApprovalRequestExpired { .. } => report.expired += 1,
                    Event::RollbackDecisionOverdue { .. } => report.rollbacks_overdue += 1,
                    Event::DeviationExpired { .. } => report.deviations_expired += 1,
                    _ => {}
                }
            }
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

    /// The scheduler: processes deadlines on the wall clock every `tick` until shutdown.
    pub fn deadlines_every(self: Arc<Self>, tick: Duration) -> Scheduler {
        Arc::new(move |mut shutdown: Shutdown| {
            let this = self.clone();
            async move {
                let mut clock = tokio::time::interval(tick);
                clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = clock.tick() => {}
                        _ = shutdown.wait() => return,
                    }
                    let md = Metadata::by("governance-scheduler", "");
                    if let Err(e) = this.process_deadlines(Timestamp::now(), md).await {
                        tracing::warn!(error = %e, "deadline processing failed; trying again at the next tick");
                    }
                }
            }
            .boxed()
        })
    }
}

/// The target, role, actor and time of a command a segregation-of-duties refusal is recorded
/// for.
fn violation_of(c: &Command) -> Option<(ViolationTarget, String, String, Timestamp)> {
    match c {
        Command::Approve(a) => Some((
            ViolationTarget::Request(a.key.clone()),
            a.role.clone(),
            a.by.subject.clone(),
            a.at,
        )),
        Command::DecideDeviation(d) => Some((
            ViolationTarget::Deviation(d.id),
            d.role.clone(),
            d.by.subject.clone(),
            d.at,
        )),
        _ => None,
    }
}
