//! Orchestration's values as protobuf messages: what stored events carry and API answers show.

use flotilla_proto::orchestration::v1 as pb;

use crate::domain::*;

pub use flotilla_runtime::kit::time::to_proto as ts;

pub fn artifact_pb(a: &Artifact, blocked: Vec<String>) -> pb::Artifact {
    pb::Artifact {
        purl: a.purl.clone(),
        service: a.service.clone(),
        version: a.version.to_string(),
        commit: a.commit.clone(),
        repository: a.repository.clone(),
        build_url: a.build_url.clone(),
        tests: Some(pb::TestResults {
            passed: a.tests.passed,
            failed: a.tests.failed,
            skipped: a.tests.skipped,
        }),
        analysis: Some(pb::AnalysisResult {
            tool: a.analysis.tool.clone(),
            passed: a.analysis.passed,
            findings: a.analysis.findings,
        }),
        licences: a.licences.clone(),
        image_digest: a.image_digest.clone(),
        registered_at: Some(ts(a.registered_at)),
        committed_at: a.committed_at.map(ts),
        source: match a.source {
            ArtifactSource::Api => pb::ArtifactSource::Api,
            ArtifactSource::CdEvents => pb::ArtifactSource::Cdevents,
        } as i32,
        blocked,
    }
}

pub fn policy_pb(p: &OrchestrationPolicy) -> pb::OrchestrationPolicy {
    pb::OrchestrationPolicy {
        licence_allow_list: p.licence_allow_list.iter().cloned().collect(),
        descriptor_standard: Some(pb::DescriptorStandard {
            required_labels: p.descriptor_standard.required_labels.clone(),
            require_resource_limits: p.descriptor_standard.require_resource_limits,
            forbid_latest_tags: p.descriptor_standard.forbid_latest_tags,
        }),
    }
}

pub fn descriptor_pb(d: &Descriptor) -> pb::Descriptor {
    pb::Descriptor {
        kind: match d.kind {
            DescriptorKind::Helm => pb::DescriptorKind::Helm,
            DescriptorKind::Terraform => pb::DescriptorKind::Terraform,
            DescriptorKind::Kustomize => pb::DescriptorKind::Kustomize,
        } as i32,
        reference: d.reference.clone(),
        version: d.version.clone(),
        values: d.values.clone().into_iter().collect(),
        labels: d.labels.clone().into_iter().collect(),
        cpu_limit: d.cpu_limit.clone(),
        memory_limit: d.memory_limit.clone(),
        uses: d.uses.clone(),
    }
}

pub fn strategy_pb(s: &Strategy) -> pb::Strategy {
    use pb::strategy::Kind;
    let kind = match s {
        Strategy::Rolling => Kind::Rolling(pb::RollingStrategy {}),
        Strategy::BlueGreen {
            pre_promotion_analysis,
            post_promotion_analysis,
            scale_down_delay_secs,
            session_drain_secs,
        } => Kind::BlueGreen(pb::BlueGreenStrategy {
            pre_promotion_analysis: pre_promotion_analysis.clone().unwrap_or_default(),
            post_promotion_analysis: post_promotion_analysis.clone().unwrap_or_default(),
            scale_down_delay_seconds: *scale_down_delay_secs,
            session_drain_seconds: *session_drain_secs,
        }),
        Strategy::Canary { steps } => Kind::Canary(pb::CanaryStrategy {
            steps: steps
                .iter()
                .map(|s| pb::CanaryStep {
                    step: Some(match s {
                        CanaryStep::SetWeight(w) => pb::canary_step::Step::SetWeight(u32::from(*w)),
                        CanaryStep::Pause(d) => pb::canary_step::Step::Pause(pb::Pause {
                            duration_seconds: d.unwrap_or(0),
                            indefinite: d.is_none(),
                        }),
                        CanaryStep::Analysis(n) => pb::canary_step::Step::Analysis(n.clone()),
                    }),
                })
                .collect(),
        }),
    };
    pb::Strategy { kind: Some(kind) }
}

pub fn migration_pb(m: &Migration) -> pb::Migration {
    pb::Migration {
        name: m.name.clone(),
        forward: m.forward.clone(),
        rollback: m.rollback.clone(),
    }
}

pub fn item_pb(i: &ReleaseItem) -> pb::ReleaseItem {
    pb::ReleaseItem {
        service: i.service.clone(),
        version: i.version.to_string(),
        purl: i.purl.clone(),
        descriptor: Some(descriptor_pb(&i.descriptor)),
        strategy: Some(strategy_pb(&i.strategy)),
        migrations: i.migrations.iter().map(migration_pb).collect(),
    }
}

pub fn plan_pb(p: &ReleasePlan) -> pb::ReleasePlan {
    pb::ReleasePlan {
        waves: p
            .waves
            .iter()
            .map(|w| pb::Wave {
                services: w
                    .iter()
                    .map(|s| pb::PlannedService {
                        service: s.service.clone(),
                        version: s.version.clone().unwrap_or_default(),
                        co_deployment_group: s.group.clone().unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
        impact: p.impact.clone(),
        skew_violations: p.skew.clone(),
    }
}

pub fn release_pb(r: &Release) -> pb::Release {
    let (status, environment) = match &r.status {
        ReleaseStatus::Created => (pb::ReleaseStatus::Created, String::new()),
        ReleaseStatus::Planned => (pb::ReleaseStatus::Planned, String::new()),
        ReleaseStatus::Promoting { environment, .. } => {
            (pb::ReleaseStatus::Promoting, environment.clone())
        }
        ReleaseStatus::Deployed { environment } => {
            (pb::ReleaseStatus::Deployed, environment.clone())
        }
        ReleaseStatus::RolledBack { environment } => {
            (pb::ReleaseStatus::RolledBack, environment.clone())
        }
    };
    pb::Release {
        release_id: r.id.to_string(),
        name: r.name.clone(),
        business_unit: r.business_unit.clone(),
        emergency: r.emergency,
        items: r.items.iter().map(item_pb).collect(),
        plan: r.plan.as_ref().map(plan_pb),
        status: status as i32,
        environment,
        deployed_to: r.deployed_to.clone(),
        deployment_ids: r.deployments.iter().map(ToString::to_string).collect(),
        created_by: r.created_by.clone(),
        created_at: Some(ts(r.created_at)),
        promote_to: r.promote_to.clone().unwrap_or_default(),
    }
}

pub fn spec_pb(e: &Environment) -> pb::EnvironmentSpec {
    pb::EnvironmentSpec {
        business_unit: e.business_unit.clone(),
        name: e.name.clone(),
        checks: e.checks.clone(),
        data: e.data.as_ref().map(data_requirement_pb),
        test_teams: e.test_teams.clone(),
        shared: e.shared.clone(),
        desired: e.desired.clone().into_iter().collect(),
    }
}

pub fn environment_spec_pb(s: &EnvironmentSpec) -> pb::EnvironmentSpec {
    pb::EnvironmentSpec {
        business_unit: s.business_unit.clone(),
        name: s.name.clone(),
        checks: s.checks.clone(),
        data: s.data.as_ref().map(data_requirement_pb),
        test_teams: s.test_teams.clone(),
        shared: s.shared.clone(),
        desired: s.desired.clone().into_iter().collect(),
    }
}

fn data_requirement_pb(d: &DataRequirement) -> pb::DataRequirement {
    pb::DataRequirement {
        max_age_days: d.max_age_days,
        min_volume_percent: d.min_volume_percent,
    }
}

pub fn refresh_pb(r: &DataRefresh) -> pb::DataRefresh {
    pb::DataRefresh {
        masked: r.masked,
        copied_at: Some(ts(r.copied_at)),
        volume_percent: r.volume_percent,
        recorded_by: r.recorded_by.clone(),
    }
}

pub fn sign_off_pb(s: &SignOff) -> pb::SignOff {
    pb::SignOff {
        by: s.by.clone(),
        at: Some(ts(s.at)),
        passed: s.passed,
        comment: s.comment.clone(),
    }
}

pub fn window_pb(w: &TestWindow) -> pb::TestWindow {
    pb::TestWindow {
        window_id: w.id.to_string(),
        release: w.release.clone(),
        team: w.team.clone(),
        start: Some(ts(w.start)),
        end: Some(ts(w.end)),
        sign_off: w.signed_off.as_ref().map(sign_off_pb),
    }
}

pub fn difference_pb(
    key: &str,
    desired: &Option<String>,
    actual: &Option<String>,
) -> pb::ConfigDifference {
    pb::ConfigDifference {
        key: key.to_owned(),
        desired: desired.clone().unwrap_or_default(),
        desired_present: desired.is_some(),
        actual: actual.clone().unwrap_or_default(),
        actual_present: actual.is_some(),
    }
}

pub fn environment_pb(e: &Environment) -> pb::Environment {
    pb::Environment {
        spec: Some(spec_pb(e)),
        actual: e.actual.clone().into_iter().collect(),
        drift: diff(&e.desired, &e.actual)
            .iter()
            .map(|(k, d, a)| difference_pb(k, d, a))
            .collect(),
        last_refresh: e.last_refresh.as_ref().map(refresh_pb),
        windows: e.windows.iter().map(window_pb).collect(),
        validations: e
            .validations
            .iter()
            .map(|((release, check), (passed, at))| pb::Validation {
                release: release.clone(),
                check: check.clone(),
                passed: *passed,
                at: Some(ts(*at)),
            })
            .collect(),
        running: e.running.clone().into_iter().collect(),
    }
}

pub fn bump_pb(b: Bump) -> pb::Bump {
    match b {
        Bump::Patch => pb::Bump::Patch,
        Bump::Minor => pb::Bump::Minor,
        Bump::Major => pb::Bump::Major,
    }
}

pub fn rule_pb(r: &TriggerRule) -> pb::TriggerRule {
    pb::TriggerRule {
        rule_id: r.id.to_string(),
        business_unit: r.business_unit.clone(),
        services: r.services.clone(),
        up_to: bump_pb(r.up_to) as i32,
        environment: r.environment.clone(),
    }
}

pub fn outcome_pb(o: &StepOutcome) -> pb::StepOutcome {
    pb::StepOutcome {
        succeeded: o.succeeded,
        exit_code: o.exit_code,
        duration_ms: o.duration_ms,
        output_tail: o.output_tail.clone(),
    }
}

pub fn step_pb(s: &Step) -> pb::Step {
    let (detail, rollback_detail, wait_seconds, stage) = match &s.kind {
        StepKind::Migrate {
            script,
            rollback_script,
            ..
        } => (script.clone(), rollback_script.clone(), 0, String::new()),
        StepKind::Deploy(_) | StepKind::Hold => (String::new(), String::new(), 0, String::new()),
        StepKind::Wait { seconds, why } => (why.clone(), String::new(), *seconds, String::new()),
        StepKind::Analysis { name, stage } => (
            name.clone(),
            String::new(),
            0,
            match stage {
                AnalysisStage::PrePromotion => "pre-promotion",
                AnalysisStage::PostPromotion => "post-promotion",
                AnalysisStage::Canary => "canary",
            }
            .to_owned(),
        ),
        StepKind::RollbackDeploy { to } => (
            to.clone().unwrap_or_default(),
            String::new(),
            0,
            String::new(),
        ),
        StepKind::RollbackMigrate { script, .. } => {
            (script.clone(), String::new(), 0, String::new())
        }
    };
    let migration = match &s.kind {
        StepKind::Migrate { migration, .. } | StepKind::RollbackMigrate { migration, .. } => {
            migration.clone()
        }
        _ => String::new(),
    };
    let (state, started_at, finished_at, outcome) = match &s.state {
        StepState::Pending => (pb::StepState::Pending, None, None, None),
        StepState::Started { at } => (pb::StepState::Started, Some(ts(*at)), None, None),
        StepState::Finished { at, outcome } => (
            if outcome.succeeded {
                pb::StepState::Succeeded
            } else {
                pb::StepState::Failed
            },
            None,
            Some(ts(*at)),
            Some(outcome_pb(outcome)),
        ),
    };
    pb::Step {
        index: s.index,
        step_id: s.id.to_string(),
        wave: s.wave,
        service: s.service.clone(),
        version: s.version.clone().unwrap_or_default(),
        kind: s.kind.name(),
        migration,
        detail,
        state: state as i32,
        rollback: s.rollback,
        started_at,
        finished_at,
        outcome,
        wait_seconds,
        rollback_detail,
        stage,
    }
}

pub fn deployment_pb(d: &Deployment) -> pb::Deployment {
    let (status, reason) = match &d.status {
        DeploymentStatus::Running => (pb::DeploymentStatus::Running, String::new()),
        DeploymentStatus::Paused { reason } => (pb::DeploymentStatus::Paused, reason.clone()),
        DeploymentStatus::AwaitingRollbackDecision { reason, .. } => (
            pb::DeploymentStatus::AwaitingRollbackDecision,
            reason.clone(),
        ),
        DeploymentStatus::RollingBack { reason } => {
            (pb::DeploymentStatus::RollingBack, reason.clone())
        }
        DeploymentStatus::Succeeded => (pb::DeploymentStatus::Succeeded, String::new()),
        DeploymentStatus::RolledBack { reason } => {
            (pb::DeploymentStatus::RolledBack, reason.clone())
        }
        DeploymentStatus::Failed { reason } => (pb::DeploymentStatus::Failed, reason.clone()),
    };
    let awaited = match &d.status {
        DeploymentStatus::AwaitingRollbackDecision {
            decision,
            decide_by,
            notify,
            ..
        } => Some((*decision, *decide_by, notify.as_slice())),
        _ => None,
    };
    pb::Deployment {
        deployment_id: d.id.to_string(),
        release: d.release.clone(),
        release_id: d.release_id.to_string(),
        environment: d.environment.clone(),
        business_unit: d.business_unit.clone(),
        emergency: d.emergency,
        steps: d.steps.iter().map(step_pb).collect(),
        status: status as i32,
        reason,
        previous: d.previous.clone().into_iter().collect(),
        artifacts: d.artifacts.clone().into_iter().collect(),
        previous_artifacts: d.previous_artifacts.clone().into_iter().collect(),
        holds: d.holds.clone(),
        started_by: d.started_by.clone(),
        started_at: Some(ts(d.started_at)),
        finished_at: d.finished_at.map(ts),
        rollback_decision_id: awaited.map(|(id, ..)| id.to_string()).unwrap_or_default(),
        decide_by: awaited.map(|(_, by, _)| ts(by)),
        notify: awaited.map(|(.., n)| n.to_vec()).unwrap_or_default(),
    }
}
