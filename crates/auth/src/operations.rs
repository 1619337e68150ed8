//! Every guarded gRPC operation, the Cedar action it is checked as, and the action group it
//! belongs to. Default policies grant groups to roles; a replacement policy may name single
//! actions (`Flotilla::Action::"governance:Approve"`).

/// One guarded gRPC operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// gRPC full service name, e.g. `flotilla.governance.v1.GovernanceService`.
    pub service: &'static str,
    /// gRPC method name, e.g. `CheckGate`.
    pub method: &'static str,
    /// Cedar action id, `<area>:<Method>`.
    pub action: &'static str,
    /// Cedar action group the action is in.
    pub group: &'static str,
}

/// Action groups, each a Cedar action that the operations' actions are `in`.
pub const GROUPS: &[&str] = &[
    "read",
    "catalog-write",
    "approval-request",
    "approval-decision",
    "cab-decision",
    "policy-admin",
    "window-admin",
    "deviation-request",
    "deviation-decision",
    "rollback-request",
    "rollback-decision",
    "scheduler",
    "access-admin",
    "artifact-register",
    "environment-admin",
    "environment-report",
    "test-window",
    "release-write",
    "deployment-control",
    "risk-evidence",
    "monitoring-config",
    "metrics-push",
    "audit",
    "ledger-admin",
    "retention-admin",
    "unlisted",
];

macro_rules! ops {
    ($service:literal, $area:literal: $($method:literal => $group:literal),* $(,)?) => {
        [$(Operation {
            service: $service,
            method: $method,
            action: concat!($area, ":", $method),
            group: $group,
        }),*]
    };
}

const GOVERNANCE: &[Operation] = &ops!("flotilla.governance.v1.GovernanceService", "governance":
    "GetStatus" => "read",
    "SetPolicy" => "policy-admin",
    "GetPolicy" => "read",
    "CheckReleaseName" => "read",
    "OpenApprovalRequest" => "approval-request",
    "GetApprovalRequest" => "read",
    "ListApprovalRequests" => "read",
    "Approve" => "approval-decision",
    "Reject" => "approval-decision",
    "RecordCabDecision" => "cab-decision",
    "CreateFreezeWindow" => "window-admin",
    "CancelFreezeWindow" => "window-admin",
    "ListFreezeWindows" => "read",
    "RequestDeviation" => "deviation-request",
    "ApproveDeviation" => "deviation-decision",
    "RejectDeviation" => "deviation-decision",
    "ListDeviations" => "read",
    "OpenRollbackDecision" => "rollback-request",
    "DecideRollback" => "rollback-decision",
    "ListRollbackDecisions" => "read",
    "CheckGate" => "read",
    "ProcessDeadlines" => "scheduler",
    "ReplaceAccessPolicy" => "access-admin",
    "GetAccessPolicy" => "read",
);

const DEPENDENCY: &[Operation] = &ops!("flotilla.dependency.v1.DependencyMappingService", "dependency":
    "GetStatus" => "read",
    "RegisterService" => "catalog-write",
    "UpdateService" => "catalog-write",
    "GetService" => "read",
    "ListServices" => "read",
    "DeclareDependency" => "catalog-write",
    "RemoveDependency" => "catalog-write",
    "PinCoDeployment" => "catalog-write",
    "AnalyzeImpact" => "read",
    "GetCoDeploymentGroups" => "read",
    "PlanRelease" => "read",
    "RecordObservedCalls" => "catalog-write",
    "GetDependencyDrift" => "read",
    "GetDependencyMatrix" => "read",
    "RecordDeployment" => "catalog-write",
    "TagFootprint" => "catalog-write",
    "GetFootprint" => "read",
    "DeclareVersionRequirement" => "catalog-write",
    "GetVersionSkew" => "read",
    "PublishSchema" => "catalog-write",
    "DeclareSchemaUse" => "catalog-write",
    "ImportBackstageCatalog" => "catalog-write",
);

const ORCHESTRATION: &[Operation] = &ops!("flotilla.orchestration.v1.OrchestrationService", "orchestration":
    "GetStatus" => "read",
    "RegisterArtifact" => "artifact-register",
    "GetArtifact" => "read",
    "ListArtifacts" => "read",
    "SetPolicy" => "policy-admin",
    "GetPolicy" => "read",
    "DefineSharedInfrastructure" => "environment-admin",
    "DefineEnvironment" => "environment-admin",
    "SetPromotionPath" => "environment-admin",
    "ListEnvironments" => "read",
    "RemoveEnvironment" => "environment-admin",
    "ReportConfiguration" => "environment-report",
    "GetParity" => "read",
    "RecordDataRefresh" => "environment-report",
    "BookTestWindow" => "test-window",
    "SignOffTestWindow" => "test-window",
    "RecordValidation" => "environment-report",
    "DefineTriggerRule" => "environment-admin",
    "RemoveTriggerRule" => "environment-admin",
    "ListTriggerRules" => "read",
    "CreateRelease" => "release-write",
    "PlanRelease" => "release-write",
    "PromoteRelease" => "release-write",
    "RollbackRelease" => "release-write",
    "GetRelease" => "read",
    "ListReleases" => "read",
    "GetDeployment" => "read",
    "WatchDeployment" => "read",
    "ResumeDeployment" => "deployment-control",
    "RecordAnalysis" => "deployment-control",
);
const RISK: &[Operation] = &ops!("flotilla.risk.v1.RiskValidationService", "risk":
    "GetStatus" => "read",
    "JudgeCanary" => "deployment-control",
    "GetCanaryJudgement" => "read",
    "GetRiskAssessments" => "read",
    "ReassessRisk" => "risk-evidence",
    "SetRiskWeights" => "policy-admin",
    "GetRiskWeights" => "read",
    "RecordFmea" => "risk-evidence",
    "CloseFmeaAction" => "risk-evidence",
    "GetFmea" => "read",
    "RecordValidation" => "risk-evidence",
    "ListValidations" => "read",
);
const MONITORING: &[Operation] = &ops!("flotilla.monitoring.v1.MonitoringService", "monitoring":
    "GetStatus" => "read",
    "DefineHealthCheck" => "monitoring-config",
    "RemoveHealthCheck" => "monitoring-config",
    "ListHealthChecks" => "read",
    "SetWatchPolicy" => "policy-admin",
    "GetWatchPolicy" => "read",
    "PushSamples" => "metrics-push",
    "GetWatch" => "read",
    "ListWatches" => "read",
    "GetDoraMetrics" => "read",
    "CorrelateAnomaly" => "read",
    "RecordTicket" => "metrics-push",
    "DeclareAdoptionTarget" => "monitoring-config",
    "RecordAdoption" => "metrics-push",
    "GetReleaseOutcome" => "read",
    "RecordPostmortem" => "monitoring-config",
    "GetPostmortem" => "read",
    "ListPostmortems" => "read",
);
const COMPLIANCE: &[Operation] = &ops!("flotilla.compliance.v1.ComplianceService", "compliance":
    "GetStatus" => "read",
    "GetCheckpoint" => "read",
    "SignCheckpoint" => "ledger-admin",
    "ListCheckpoints" => "read",
    "GetInclusionProof" => "read",
    "GetConsistencyProof" => "read",
    "ListSources" => "read",
    "ListChainAlerts" => "read",
    "Replay" => "audit",
    "ExportAuditBundle" => "audit",
    "GetAuditReport" => "audit",
    "GetStateAt" => "audit",
    "GetApprovalEvidence" => "audit",
    "GetEvidencePack" => "audit",
    "SetRetentionPolicy" => "retention-admin",
    "GetRetention" => "audit",
    "PlaceLegalHold" => "retention-admin",
    "ReleaseLegalHold" => "retention-admin",
    "EraseSubject" => "retention-admin",
);

/// Every guarded operation of every service.
pub fn all() -> impl Iterator<Item = &'static Operation> {
    GOVERNANCE
        .iter()
        .chain(DEPENDENCY)
        .chain(ORCHESTRATION)
        .chain(RISK)
        .chain(MONITORING)
        .chain(COMPLIANCE)
}

/// The operation a gRPC path (`/<service>/<method>`) calls, if it is listed.
pub fn by_path(path: &str) -> Option<&'static Operation> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    all().find(|o| o.service == service && o.method == method)
}

/// The operation with a Cedar action id, if it is listed.
pub fn by_action(action: &str) -> Option<&'static Operation> {
    all().find(|o| o.action == action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_and_actions_are_unique() {
        let op = by_path("/flotilla.governance.v1.GovernanceService/CheckGate").expect("listed");
        assert_eq!(op.action, "governance:CheckGate");
        assert!(by_path("/flotilla.governance.v1.GovernanceService/Nope").is_none());
        let mut actions: Vec<_> = all().map(|o| o.action).collect();
        let n = actions.len();
        actions.sort_unstable();
        actions.dedup();
        assert_eq!(actions.len(), n);
        assert!(all().all(|o| GROUPS.contains(&o.group)));
    }
}
