//! What CI, people, other services and the deployment runner ask orchestration to do. Time and
//! ids come in with each command; each is decided in `decide/` by its family.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SetPolicy(SetPolicy),
    RegisterArtifact(RegisterArtifact),
    SetPromotionPath(SetPromotionPath),
    DefineEnvironment(DefineEnvironment),
    RemoveEnvironment(RemoveEnvironment),
    DefineSharedInfrastructure(DefineSharedInfrastructure),
    DefineTriggerRule(DefineTriggerRule),
    RemoveTriggerRule(RemoveTriggerRule),
    ReportConfiguration(ReportConfiguration),
    RecordDataRefresh(RecordDataRefresh),
    BookTestWindow(BookTestWindow),
    SignOffTestWindow(SignOffTestWindow),
    RecordValidation(RecordValidation),
    CreateRelease(CreateRelease),
    PlanRelease(PlanRelease),
    PromoteRelease(PromoteRelease),
    StartStep(StartStep),
    FinishStep(FinishStep),
    RecordAnalysis(RecordAnalysis),
    ResumeDeployment(ResumeDeployment),
    RollbackRelease(RollbackRelease),
    DeclineRollback(DeclineRollback),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetPolicy {
    pub policy: OrchestrationPolicy,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RegisterArtifact {
    pub artifact: Artifact,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetPromotionPath {
    pub business_unit: String,
    pub environments: Vec<String>,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DefineEnvironment {
    pub spec: EnvironmentSpec,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RemoveEnvironment {
    pub business_unit: String,
    pub name: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DefineSharedInfrastructure {
    pub infrastructure: SharedInfrastructure,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DefineTriggerRule {
    pub rule: TriggerRule,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RemoveTriggerRule {
    pub id: Uuid,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReportConfiguration {
    pub business_unit: String,
    pub environment: String,
    pub actual: BTreeMap<String, String>,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordDataRefresh {
    pub business_unit: String,
    pub environment: String,
    pub refresh: DataRefresh,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BookTestWindow {
    pub business_unit: String,
    pub environment: String,
    pub window: TestWindow,
    /// Now: a window that is over cannot be booked.
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SignOffTestWindow {
    pub business_unit: String,
    pub environment: String,
    pub window: Uuid,
    pub sign_off: SignOff,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordValidation {
    pub business_unit: String,
    pub environment: String,
    pub release: String,
    pub check: String,
    pub passed: bool,
    pub at: Timestamp,
}

/// One service a release is asked to carry; without a version, the newest artifact of the
/// service that is not running in the first environment of the path.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestedItem {
    pub service: String,
    pub version: Option<semver::Version>,
    pub descriptor: Descriptor,
    pub strategy: Strategy,
    pub migrations: Vec<Migration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateRelease {
    pub name: String,
    pub business_unit: String,
    pub emergency: bool,
    pub items: Vec<RequestedItem>,
    /// With no items: every service whose prefix matches one of these (`payments-*`) and whose
    /// newest artifact does not run in the first environment of the unit's path yet, with
    /// `default_descriptor` and a rolling update.
    pub include: Vec<String>,
    pub default_descriptor: Option<Descriptor>,
    /// Governance's answer on the name (its release naming rule), asked by the edge.
    pub name_refused: Option<String>,
    /// Set by a trigger rule: the environment the release is promoted into by itself.
    pub promote_to: Option<String>,
    pub by: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlanRelease {
    pub release: Uuid,
    /// Dependency-mapping's plan of the release's services.
    pub plan: ReleasePlan,
    pub at: Timestamp,
}

/// Governance's answer for a release entering an environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GateAnswer {
    pub allowed: bool,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PromoteRelease {
    pub release: Uuid,
    pub environment: String,
    pub gate: GateAnswer,
    pub by: String,
    pub at: Timestamp,
}

/// The runner starts a step (recorded before the executor runs it).
#[derive(Clone, Debug, PartialEq)]
pub struct StartStep {
    pub deployment: Uuid,
    pub index: u32,
    pub at: Timestamp,
}

/// A step's outcome (the executor's, a timer's, or "interrupted" after a restart).
#[derive(Clone, Debug, PartialEq)]
pub struct FinishStep {
    pub deployment: Uuid,
    pub index: u32,
    pub outcome: StepOutcome,
    pub at: Timestamp,
    /// For a forward step that failed: governance's rollback decision, opened under the
    /// criteria for the release's tier, that people have until its deadline to take. None:
    /// roll back at once (the criteria allow no time, or governance could not be asked).
    pub hold: Option<RollbackHold>,
}

/// A rollback decision governance opened for a failed step: who is told and by when people
/// must decide.
#[derive(Clone, Debug, PartialEq)]
pub struct RollbackHold {
    pub decision: Uuid,
    pub decide_by: Timestamp,
    pub notify: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordAnalysis {
    pub deployment: Uuid,
    /// The analysis step's name (the deployment's current analysis step must carry it).
    pub name: String,
    pub verdict: Verdict,
    pub detail: String,
    pub at: Timestamp,
}

/// A person resumes a deployment held by `pause {}` or by an inconclusive analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumeDeployment {
    pub deployment: Uuid,
    pub by: String,
    pub at: Timestamp,
}

/// Rolls back a release's deployment in its current environment (by hand, on monitoring's
/// `RollbackRequested`, or after a failed step).
#[derive(Clone, Debug, PartialEq)]
pub struct RollbackRelease {
    pub release: Uuid,
    pub reason: String,
    pub by: String,
    pub at: Timestamp,
}

/// People decided (in governance) not to roll back a deployment held after a failed step: it
/// ends failed where it stands, to be fixed forward or rolled back by hand later.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclineRollback {
    pub deployment: Uuid,
    pub decision: Uuid,
    pub by: String,
    pub comment: String,
    pub at: Timestamp,
}

macro_rules! from_commands {
    ($($name:ident),*) => {
        $(impl From<$name> for Command {
            fn from(c: $name) -> Self {
                Command::$name(c)
            }
        })*
    };
}

from_commands!(
    SetPolicy,
    RegisterArtifact,
    SetPromotionPath,
    DefineEnvironment,
    RemoveEnvironment,
    DefineSharedInfrastructure,
    DefineTriggerRule,
    RemoveTriggerRule,
    ReportConfiguration,
    RecordDataRefresh,
    BookTestWindow,
    SignOffTestWindow,
    RecordValidation,
    CreateRelease,
    PlanRelease,
    PromoteRelease,
    StartStep,
    FinishStep,
    RecordAnalysis,
    ResumeDeployment,
    RollbackRelease,
    DeclineRollback
);
