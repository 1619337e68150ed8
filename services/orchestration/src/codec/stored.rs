//! Stored messages as domain values, taken as they were recorded: nothing here applies an API
//! rule. Only what cannot be a value at all (ids that are not UUIDs, versions that are not
//! semantic versions: the service wrote both itself) makes an event unreadable.

use std::collections::BTreeMap;

use flotilla_proto::orchestration::v1 as pb;
use prost::Message;
use uuid::Uuid;

use crate::domain::*;

use flotilla_runtime::kit::time::stored as at;

fn dec<M: Message + Default>(payload: &[u8]) -> Result<M, String> {
    M::decode(payload).map_err(|e| format!("the payload does not decode: {e}"))
}

fn uuid(field: &str, s: &str) -> Result<Uuid, String> {
    Uuid::parse_str(s).map_err(|_| format!("{field}: {} is not a UUID", names::shown(s)))
}

fn version(field: &str, v: &str) -> Result<semver::Version, String> {
    semver::Version::parse(v).map_err(|e| format!("{field}: {}: {e}", names::shown(v)))
}

fn map(m: BTreeMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

fn artifact(a: pb::Artifact) -> Result<Artifact, String> {
    let tests = a.tests.unwrap_or_default();
    let analysis = a.analysis.unwrap_or_default();
    Ok(Artifact {
        version: version("artifact.version", &a.version)?,
        purl: a.purl,
        service: a.service,
        commit: a.commit,
        repository: a.repository,
        build_url: a.build_url,
        tests: TestResults {
            passed: tests.passed,
            failed: tests.failed,
            skipped: tests.skipped,
        },
        analysis: Analysis {
            tool: analysis.tool,
            passed: analysis.passed,
            findings: analysis.findings,
        },
        licences: a.licences,
        image_digest: a.image_digest,
        registered_at: at(a.registered_at.as_ref()),
        committed_at: a.committed_at.as_ref().map(|t| at(Some(t))),
        source: if a.source == pb::ArtifactSource::Cdevents as i32 {
            ArtifactSource::CdEvents
        } else {
            ArtifactSource::Api
        },
    })
}

fn policy(p: pb::OrchestrationPolicy) -> OrchestrationPolicy {
    let std = p.descriptor_standard.unwrap_or_default();
    OrchestrationPolicy {
        licence_allow_list: p.licence_allow_list.into_iter().collect(),
        descriptor_standard: DescriptorStandard {
            required_labels: std.required_labels,
            require_resource_limits: std.require_resource_limits,
            forbid_latest_tags: std.forbid_latest_tags,
        },
    }
}

pub fn descriptor(d: pb::Descriptor) -> Descriptor {
    Descriptor {
        kind: match pb::DescriptorKind::try_from(d.kind) {
            Ok(pb::DescriptorKind::Terraform) => DescriptorKind::Terraform,
            Ok(pb::DescriptorKind::Kustomize) => DescriptorKind::Kustomize,
            _ => DescriptorKind::Helm,
        },
        reference: d.reference,
        version: d.version,
        values: map(d.values),
        labels: map(d.labels),
        cpu_limit: d.cpu_limit,
        memory_limit: d.memory_limit,
        uses: d.uses,
    }
}

pub fn strategy(s: Option<pb::Strategy>) -> Strategy {
    use pb::strategy::Kind;
    match s.and_then(|s| s.kind) {
        Some(Kind::BlueGreen(b)) => Strategy::BlueGreen {
            pre_promotion_analysis: (!b.pre_promotion_analysis.is_empty())
                .then_some(b.pre_promotion_analysis),
            post_promotion_analysis: (!b.post_promotion_analysis.is_empty())
                .then_some(b.post_promotion_analysis),
            scale_down_delay_secs: b.scale_down_delay_seconds,
            session_drain_secs: b.session_drain_seconds,
        },
        Some(Kind::Canary(c)) => Strategy::Canary {
            steps: c
                .steps
                .into_iter()
                .filter_map(|s| s.step)
                .map(|s| match s {
                    pb::canary_step::Step::SetWeight(w) => {
                        CanaryStep::SetWeight(u8::try_from(w).unwrap_or(100))
                    }
                    pb::canary_step::Step::Pause(p) => {
                        CanaryStep::Pause((!p.indefinite).then_some(p.duration_seconds))
                    }
                    pb::canary_step::Step::Analysis(n) => CanaryStep::Analysis(n),
                })
                .collect(),
        },
        Some(Kind::Rolling(_)) | None => Strategy::Rolling,
    }
}

pub fn migration(m: pb::Migration) -> Migration {
    Migration {
        name: m.name,
        forward: m.forward,
        rollback: m.rollback,
    }
}

fn item(i: pb::ReleaseItem) -> Result<ReleaseItem, String> {
    Ok(ReleaseItem {
        version: version("item.version", &i.version)?,
        service: i.service,
        purl: i.purl,
        descriptor: descriptor(i.descriptor.unwrap_or_default()),
        strategy: strategy(i.strategy),
        migrations: i.migrations.into_iter().map(migration).collect(),
    })
}

fn plan(p: pb::ReleasePlan) -> ReleasePlan {
    ReleasePlan {
        waves: p
            .waves
            .into_iter()
            .map(|w| {
                w.services
                    .into_iter()
                    .map(|s| PlannedService {
                        service: s.service,
                        version: (!s.version.is_empty()).then_some(s.version),
                        group: (!s.co_deployment_group.is_empty()).then_some(s.co_deployment_group),
                    })
                    .collect()
            })
            .collect(),
        impact: p.impact,
        skew: p.skew_violations,
    }
}

fn release(r: pb::Release) -> Result<Release, String> {
    Ok(Release {
        id: uuid("release_id", &r.release_id)?,
        items: r.items.into_iter().map(item).collect::<Result<_, _>>()?,
        plan: r.plan.map(plan),
        name: r.name,
        business_unit: r.business_unit,
        emergency: r.emergency,
        // A release is recorded when it is created: what happens to it later is other events.
        status: ReleaseStatus::Created,
        deployed_to: Vec::new(),
        deployments: Vec::new(),
        created_by: r.created_by,
        created_at: at(r.created_at.as_ref()),
        promote_to: (!r.promote_to.is_empty()).then_some(r.promote_to),
    })
}

fn spec(s: pb::EnvironmentSpec) -> EnvironmentSpec {
    EnvironmentSpec {
        business_unit: s.business_unit,
        name: s.name,
        checks: s.checks,
        data: s.data.map(|d| DataRequirement {
            max_age_days: d.max_age_days,
            min_volume_percent: d.min_volume_percent,
        }),
        test_teams: s.test_teams,
        shared: s.shared,
        desired: map(s.desired),
    }
}

fn sign_off(s: pb::SignOff) -> SignOff {
    SignOff {
        by: s.by,
        at: at(s.at.as_ref()),
        passed: s.passed,
        comment: s.comment,
    }
}

fn window(w: pb::TestWindow) -> Result<TestWindow, String> {
    Ok(TestWindow {
        id: uuid("window_id", &w.window_id)?,
        release: w.release,
        team: w.team,
        start: at(w.start.as_ref()),
        end: at(w.end.as_ref()),
        signed_off: w.sign_off.map(sign_off),
    })
}

fn bump(b: i32) -> Bump {
    match pb::Bump::try_from(b) {
        Ok(pb::Bump::Major) => Bump::Major,
        Ok(pb::Bump::Minor) => Bump::Minor,
        _ => Bump::Patch,
    }
}

fn outcome(o: Option<pb::StepOutcome>) -> StepOutcome {
    let o = o.unwrap_or_default();
    StepOutcome {
        succeeded: o.succeeded,
        exit_code: o.exit_code,
        duration_ms: o.duration_ms,
        output_tail: o.output_tail,
    }
}

/// A step's kind from its recorded name and details (see `messages::step_pb`).
fn step_kind(s: &pb::Step) -> StepKind {
    let (name, migration) = (s.kind.as_str(), s.migration.as_str());
    match name {
        "migrate" => StepKind::Migrate {
            migration: migration.to_owned(),
            script: s.detail.clone(),
            rollback_script: s.rollback_detail.clone(),
        },
        "rollback-migrate" => StepKind::RollbackMigrate {
            migration: migration.to_owned(),
            script: s.detail.clone(),
        },
        "rollback-deploy" => StepKind::RollbackDeploy {
            to: (!s.detail.is_empty()).then(|| s.detail.clone()),
        },
        "wait" => StepKind::Wait {
            seconds: s.wait_seconds,
            why: s.detail.clone(),
        },
        "hold" => StepKind::Hold,
        "analysis" => StepKind::Analysis {
            name: s.detail.clone(),
            stage: match s.stage.as_str() {
                "pre-promotion" => AnalysisStage::PrePromotion,
                "post-promotion" => AnalysisStage::PostPromotion,
                _ => AnalysisStage::Canary,
            },
        },
        "deploy-preview" => StepKind::Deploy(Phase::Preview),
        "deploy-switch" => StepKind::Deploy(Phase::Switch),
        "deploy-scale-down-old" => StepKind::Deploy(Phase::ScaleDownOld),
        "deploy-promote" => StepKind::Deploy(Phase::Promote),
        other => match other
            .strip_prefix("deploy-set-weight-")
            .and_then(|w| w.parse().ok())
        {
            Some(w) => StepKind::Deploy(Phase::SetWeight(w)),
            None => StepKind::Deploy(Phase::Rolling),
        },
    }
}

fn step(s: pb::Step) -> Result<Step, String> {
    Ok(Step {
        index: s.index,
        id: uuid("step_id", &s.step_id)?,
        wave: s.wave,
        kind: step_kind(&s),
        service: s.service,
        version: (!s.version.is_empty()).then_some(s.version),
        // Recorded when the deployment or its rollback was planned: every step pending.
        state: StepState::Pending,
        rollback: s.rollback,
    })
}

fn deployment(d: pb::Deployment) -> Result<Deployment, String> {
    Ok(Deployment {
        id: uuid("deployment_id", &d.deployment_id)?,
        release_id: uuid("release_id", &d.release_id)?,
        steps: d.steps.into_iter().map(step).collect::<Result<_, _>>()?,
        release: d.release,
        environment: d.environment,
        business_unit: d.business_unit,
        emergency: d.emergency,
        status: DeploymentStatus::Running,
        previous: map(d.previous),
        artifacts: map(d.artifacts),
        previous_artifacts: map(d.previous_artifacts),
        holds: d.holds,
        started_by: d.started_by,
        started_at: at(d.started_at.as_ref()),
        finished_at: None,
    })
}

pub fn decode(name: &str, payload: &[u8]) -> Result<Event, String> {
    Ok(match name {
        "OrchestrationPolicySet" => {
            let m: pb::OrchestrationPolicySet = dec(payload)?;
            Event::PolicySet {
                policy: policy(m.policy.unwrap_or_default()),
                at: at(m.set_at.as_ref()),
            }
        }
        "ArtifactRegistered" => {
            let m: pb::ArtifactRegistered = dec(payload)?;
            Event::ArtifactRegistered(Box::new(artifact(m.artifact.unwrap_or_default())?))
        }
        "PromotionPathSet" => {
            let m: pb::PromotionPathSet = dec(payload)?;
            Event::PromotionPathSet {
                business_unit: m.business_unit,
                environments: m.environments,
                at: at(m.set_at.as_ref()),
            }
        }
        "EnvironmentDefined" => {
            let m: pb::EnvironmentDefined = dec(payload)?;
            Event::EnvironmentDefined {
                spec: spec(m.spec.unwrap_or_default()),
                created: m.created,
                at: at(m.defined_at.as_ref()),
            }
        }
        "EnvironmentRemoved" => {
            let m: pb::EnvironmentRemoved = dec(payload)?;
            Event::EnvironmentRemoved {
                business_unit: m.business_unit,
                name: m.environment,
                at: at(m.removed_at.as_ref()),
            }
        }
        "SharedInfrastructureDefined" => {
            let m: pb::SharedInfrastructureDefined = dec(payload)?;
            let i = m.infrastructure.unwrap_or_default();
            Event::SharedInfrastructureDefined(SharedInfrastructure {
                name: i.name,
                capacity: i.capacity,
            })
        }
        "TriggerRuleDefined" => {
            let r = dec::<pb::TriggerRuleDefined>(payload)?
                .rule
                .unwrap_or_default();
            Event::TriggerRuleDefined(TriggerRule {
                id: uuid("rule_id", &r.rule_id)?,
                business_unit: r.business_unit,
                services: r.services,
                up_to: bump(r.up_to),
                environment: r.environment,
            })
        }
        "TriggerRuleRemoved" => {
            let m: pb::TriggerRuleRemoved = dec(payload)?;
            Event::TriggerRuleRemoved {
                id: uuid("rule_id", &m.rule_id)?,
            }
        }
        "ConfigurationReported" => {
            let m: pb::ConfigurationReported = dec(payload)?;
            Event::ConfigurationReported {
                business_unit: m.business_unit,
                environment: m.environment,
                actual: map(m.actual),
                at: at(m.reported_at.as_ref()),
            }
        }
        "DriftDetected" => {
            let m: pb::DriftDetected = dec(payload)?;
            let d = m.difference.unwrap_or_default();
            Event::DriftDetected {
                business_unit: m.business_unit,
                environment: m.environment,
                key: d.key,
                desired: d.desired_present.then_some(d.desired),
                actual: d.actual_present.then_some(d.actual),
                at: at(m.detected_at.as_ref()),
            }
        }
        "DataRefreshed" => {
            let m: pb::DataRefreshed = dec(payload)?;
            let r = m.refresh.unwrap_or_default();
            Event::DataRefreshed {
                business_unit: m.business_unit,
                environment: m.environment,
                refresh: DataRefresh {
                    masked: r.masked,
                    copied_at: at(r.copied_at.as_ref()),
                    volume_percent: r.volume_percent,
                    recorded_by: r.recorded_by,
                },
            }
        }
        "TestWindowBooked" => {
            let m: pb::TestWindowBooked = dec(payload)?;
            Event::TestWindowBooked {
                business_unit: m.business_unit,
                environment: m.environment,
                window: window(m.window.unwrap_or_default())?,
            }
        }
        "TestWindowSignedOff" => {
            let m: pb::TestWindowSignedOff = dec(payload)?;
            Event::TestWindowSignedOff {
                business_unit: m.business_unit,
                environment: m.environment,
                window: uuid("window_id", &m.window_id)?,
                sign_off: sign_off(m.sign_off.unwrap_or_default()),
            }
        }
        "ValidationRecorded" => {
            let m: pb::ValidationRecorded = dec(payload)?;
            let v = m.validation.unwrap_or_default();
            Event::ValidationRecorded {
                business_unit: m.business_unit,
                environment: m.environment,
                release: v.release,
                check: v.check,
                passed: v.passed,
                at: at(v.at.as_ref()),
            }
        }
        "ReleaseCreated" => {
            let m: pb::ReleaseCreated = dec(payload)?;
            Event::ReleaseCreated(Box::new(release(m.release.unwrap_or_default())?))
        }
        "ReleasePlanned" => {
            let m: pb::ReleasePlanned = dec(payload)?;
            Event::ReleasePlanned {
                release: uuid("release_id", &m.release_id)?,
                plan: plan(m.plan.unwrap_or_default()),
                at: at(m.planned_at.as_ref()),
            }
        }
        "DeploymentStarted" => {
            let m: pb::DeploymentStarted = dec(payload)?;
            Event::DeploymentStarted(Box::new(deployment(m.deployment.unwrap_or_default())?))
        }
        "StepStarted" => {
            let m: pb::StepStarted = dec(payload)?;
            Event::StepStarted {
                deployment: uuid("deployment_id", &m.deployment_id)?,
                index: m.index,
                at: at(m.started_at.as_ref()),
            }
        }
        "StepFinished" => {
            let m: pb::StepFinished = dec(payload)?;
            Event::StepFinished {
                deployment: uuid("deployment_id", &m.deployment_id)?,
                index: m.index,
                outcome: outcome(m.outcome),
                at: at(m.finished_at.as_ref()),
            }
        }
        "DeploymentPaused" => {
            let m: pb::DeploymentPaused = dec(payload)?;
            Event::DeploymentPaused {
                deployment: uuid("deployment_id", &m.deployment_id)?,
                reason: m.reason,
                at: at(m.paused_at.as_ref()),
            }
        }
        "RollbackDecisionAwaited" => {
            let m: pb::RollbackDecisionAwaited = dec(payload)?;
            Event::RollbackDecisionAwaited {
                deployment: uuid("deployment_id", &m.deployment_id)?,
                decision: uuid("decision_id", &m.decision_id)?,
                reason: m.reason,
                decide_by: at(m.decide_by.as_ref()),
                notify: m.notify,
                at: at(m.awaited_at.as_ref()),
            }
        }
        "DeploymentResumed" => {
            let m: pb::DeploymentResumed = dec(payload)?;
            Event::DeploymentResumed {
                deployment: uuid("deployment_id", &m.deployment_id)?,
                by: m.resumed_by,
                at: at(m.resumed_at.as_ref()),
            }
        }
        "AnalysisRecorded" => {
            let m: pb::AnalysisRecorded = dec(payload)?;
            Event::AnalysisRecorded {
                deployment: uuid("deployment_id", &m.deployment_id)?,
                index: m.index,
                verdict: match pb::Verdict::try_from(m.verdict) {
                    Ok(pb::Verdict::Passed) => Verdict::Passed,
                    Ok(pb::Verdict::Failed) => Verdict::Failed,
                    _ => Verdict::Inconclusive,
                },
                detail: m.detail,
                at: at(m.recorded_at.as_ref()),
            }
        }
        "RollbackStarted" => {
            let m: pb::RollbackStarted = dec(payload)?;
            Event::RollbackStarted {
                deployment: uuid("deployment_id", &m.deployment_id)?,
                reason: m.reason,
                steps: m.steps.into_iter().map(step).collect::<Result<_, _>>()?,
                at: at(m.started_at.as_ref()),
            }
        }
        "DeploymentFinished" => {
            let m: pb::DeploymentFinished = dec(payload)?;
            Event::ServiceFinished {
                deployment: uuid("deployment_id", &m.deployment_id)?,
                release: m.release_id,
                environment: m.environment,
                service: m.service,
                version: m.version,
                artifact: m.artifact,
                previous_version: m.previous_version,
                outcome: match pb::DeploymentOutcome::try_from(m.outcome) {
                    Ok(pb::DeploymentOutcome::Succeeded) => ServiceOutcome::Succeeded,
                    Ok(pb::DeploymentOutcome::RolledBack) => ServiceOutcome::RolledBack,
                    _ => ServiceOutcome::Failed,
                },
                started_at: at(m.started_at.as_ref()),
                at: at(m.finished_at.as_ref()),
                deployed_by: m.deployed_by,
            }
        }
        "DeploymentCompleted" => {
            let m: pb::DeploymentCompleted = dec(payload)?;
            Event::DeploymentCompleted {
                deployment: uuid("deployment_id", &m.deployment_id)?,
                release: m.release,
                environment: m.environment,
                ending: match pb::DeploymentEnding::try_from(m.ending) {
                    Ok(pb::DeploymentEnding::Succeeded) => Ending::Succeeded,
                    Ok(pb::DeploymentEnding::Failed) => Ending::Failed { reason: m.reason },
                    _ => Ending::RolledBack { reason: m.reason },
                },
                at: at(m.completed_at.as_ref()),
            }
        }
        other => {
            return Err(format!(
                "orchestration event {other} is not known to this build"
            ));
        }
    })
}
