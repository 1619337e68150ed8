//! Requests of the API as domain values: every rule of the API's shape is checked here (required
//! fields, enum values, ranges, versions), and a breach is `INVALID_ARGUMENT` naming the field.
//! What the server decides itself (ids, who, when) is set by the handler.

use std::collections::BTreeMap;

use flotilla_proto::orchestration::v1 as pb;
use uuid::Uuid;

use crate::domain::*;

type R<T> = std::result::Result<T, DomainError>;

/// Most a request's maps and lists may hold.
const MAX_ENTRIES: usize = 1_000;

pub fn uuid(field: &str, s: &str) -> R<Uuid> {
    Uuid::parse_str(s).map_err(|_| invalid(field, format!("{} is not a UUID", shown(s))))
}

pub fn version(field: &str, v: &str) -> R<semver::Version> {
    semver::Version::parse(v.trim()).map_err(|e| {
        invalid(
            field,
            format!(
                "{} is not a semantic version ({e}); use MAJOR.MINOR.PATCH",
                shown(v)
            ),
        )
    })
}

pub fn time(field: &str, t: Option<&prost_types::Timestamp>) -> R<Timestamp> {
    let t = t.ok_or_else(|| invalid(field, "is required"))?;
    flotilla_runtime::kit::time::from_request(t).map_err(|reason| invalid(field, reason))
}

/// A time that has happened (a copy taken, a build made): not after `now` (a minute of clock
/// skew allowed).
pub fn not_after(field: &str, t: Option<&prost_types::Timestamp>, now: Timestamp) -> R<Timestamp> {
    let t = time(field, t)?;
    if t.0 > now.0 + 60_000_000 {
        return Err(invalid(
            field,
            "is in the future; give the time it happened",
        ));
    }
    Ok(t)
}

fn entries(field: &str, m: BTreeMap<String, String>) -> R<BTreeMap<String, String>> {
    if m.len() > MAX_ENTRIES {
        return Err(invalid(
            field,
            format!("{} entries, at most {MAX_ENTRIES}", m.len()),
        ));
    }
    for (k, v) in &m {
        names::reference(&format!("{field} key"), k, 256).map_err(name_error)?;
        names::optional_text(&format!("{field}[{}]", shown(k)), v, 4_096).map_err(name_error)?;
    }
    Ok(m)
}

pub fn policy(p: Option<pb::OrchestrationPolicy>) -> R<OrchestrationPolicy> {
    let p = p.ok_or_else(|| invalid("policy", "is required"))?;
    let std = p.descriptor_standard.unwrap_or_default();
    if p.licence_allow_list.len() > MAX_ENTRIES || std.required_labels.len() > MAX_ENTRIES {
        return Err(invalid("policy", "lists are at most 1000 long"));
    }
    Ok(OrchestrationPolicy {
        licence_allow_list: p.licence_allow_list.into_iter().collect(),
        descriptor_standard: DescriptorStandard {
            required_labels: std.required_labels,
            require_resource_limits: std.require_resource_limits,
            forbid_latest_tags: std.forbid_latest_tags,
        },
    })
}

pub fn descriptor(d: Option<pb::Descriptor>) -> R<Descriptor> {
    let d = d.ok_or_else(|| invalid("descriptor", "is required"))?;
    let kind = match pb::DescriptorKind::try_from(d.kind) {
        Ok(pb::DescriptorKind::Helm) => DescriptorKind::Helm,
        Ok(pb::DescriptorKind::Terraform) => DescriptorKind::Terraform,
        Ok(pb::DescriptorKind::Kustomize) => DescriptorKind::Kustomize,
        _ => {
            return Err(invalid(
                "descriptor.kind",
                "use DESCRIPTOR_KIND_HELM, _TERRAFORM or _KUSTOMIZE",
            ));
        }
    };
    names::reference("descriptor.reference", &d.reference, 512).map_err(name_error)?;
    names::optional_text("descriptor.version", &d.version, 128).map_err(name_error)?;
    if d.uses.len() > 50 {
        return Err(invalid("descriptor.uses", "at most 50"));
    }
    for u in &d.uses {
        names::reference("descriptor.uses", u, 128).map_err(name_error)?;
    }
    names::optional_text("descriptor.cpu_limit", &d.cpu_limit, 32).map_err(name_error)?;
    names::optional_text("descriptor.memory_limit", &d.memory_limit, 32).map_err(name_error)?;
    Ok(Descriptor {
        kind,
        reference: d.reference,
        version: d.version,
        values: entries("descriptor.values", d.values)?,
        labels: entries("descriptor.labels", d.labels)?,
        cpu_limit: d.cpu_limit,
        memory_limit: d.memory_limit,
        uses: d.uses,
    })
}

pub fn strategy(s: Option<pb::Strategy>) -> R<Strategy> {
    use pb::strategy::Kind;
    Ok(match s.and_then(|s| s.kind) {
        None | Some(Kind::Rolling(_)) => Strategy::Rolling,
        Some(Kind::BlueGreen(b)) => Strategy::BlueGreen {
            pre_promotion_analysis: (!b.pre_promotion_analysis.is_empty())
                .then_some(b.pre_promotion_analysis),
            post_promotion_analysis: (!b.post_promotion_analysis.is_empty())
                .then_some(b.post_promotion_analysis),
            scale_down_delay_secs: if b.scale_down_delay_seconds == 0 {
                30
            } else {
                b.scale_down_delay_seconds
            },
            session_drain_secs: b.session_drain_seconds,
        },
        Some(Kind::Canary(c)) => {
            if c.steps.len() > 50 {
                return Err(invalid("strategy.canary.steps", "at most 50"));
            }
            let steps = c
                .steps
                .into_iter()
                .map(|s| match s.step {
                    Some(pb::canary_step::Step::SetWeight(w)) => u8::try_from(w)
                        .ok()
                        .filter(|w| *w <= 100)
                        .map(CanaryStep::SetWeight)
                        .ok_or_else(|| {
                            invalid("strategy.canary.set_weight", format!("{w} is not 0-100"))
                        }),
                    Some(pb::canary_step::Step::Pause(p)) => Ok(CanaryStep::Pause(
                        (!p.indefinite).then_some(p.duration_seconds),
                    )),
                    Some(pb::canary_step::Step::Analysis(a)) => Ok(CanaryStep::Analysis(a)),
                    None => Err(invalid(
                        "strategy.canary.steps",
                        "a step is set_weight, pause or analysis",
                    )),
                })
                .collect::<R<Vec<_>>>()?;
            Strategy::Canary { steps }
        }
    })
}

pub fn migration(m: pb::Migration) -> Migration {
    Migration {
        name: m.name,
        forward: m.forward,
        rollback: m.rollback,
    }
}

pub fn requested(i: pb::RequestedItem) -> R<RequestedItem> {
    Ok(RequestedItem {
        version: if i.version.trim().is_empty() {
            None
        } else {
            Some(version("items.version", &i.version)?)
        },
        descriptor: descriptor(i.descriptor)?,
        strategy: strategy(i.strategy)?,
        migrations: i.migrations.into_iter().map(migration).collect(),
        service: i.service,
    })
}

pub fn spec(s: Option<pb::EnvironmentSpec>) -> R<EnvironmentSpec> {
    let s = s.ok_or_else(|| invalid("spec", "is required"))?;
    Ok(EnvironmentSpec {
        business_unit: s.business_unit,
        name: s.name,
        checks: s.checks,
        data: s.data.map(|d| DataRequirement {
            max_age_days: d.max_age_days,
            min_volume_percent: d.min_volume_percent,
        }),
        test_teams: s.test_teams,
        shared: s.shared,
        desired: entries("spec.desired", s.desired)?,
    })
}

pub fn actual(m: BTreeMap<String, String>) -> R<BTreeMap<String, String>> {
    entries("actual", m)
}

pub fn bump(b: i32) -> R<Bump> {
    match pb::Bump::try_from(b) {
        Ok(pb::Bump::Patch) => Ok(Bump::Patch),
        Ok(pb::Bump::Minor) => Ok(Bump::Minor),
        Ok(pb::Bump::Major) => Ok(Bump::Major),
        _ => Err(invalid(
            "rule.up_to",
            "use BUMP_PATCH, BUMP_MINOR or BUMP_MAJOR",
        )),
    }
}

pub fn verdict(v: i32) -> R<Verdict> {
    match pb::Verdict::try_from(v) {
        Ok(pb::Verdict::Passed) => Ok(Verdict::Passed),
        Ok(pb::Verdict::Failed) => Ok(Verdict::Failed),
        Ok(pb::Verdict::Inconclusive) => Ok(Verdict::Inconclusive),
        _ => Err(invalid(
            "verdict",
            "use VERDICT_PASSED, VERDICT_FAILED or VERDICT_INCONCLUSIVE",
        )),
    }
}

/// An artifact as CI registers it (its id, the package URL, from the service and digest).
pub fn artifact(
    r: pb::RegisterArtifactRequest,
    at: Timestamp,
    source: ArtifactSource,
) -> R<Artifact> {
    // A commit is made before its build is registered (a minute of clock skew allowed).
    let committed_at = match &r.committed_at {
        None => None,
        Some(t) => Some(not_after("committed_at", Some(t), at)?),
    };
    let tests = r.tests.unwrap_or_default();
    // No analysis reported is no failed analysis.
    let analysis = r.analysis.unwrap_or(pb::AnalysisResult {
        tool: String::new(),
        passed: true,
        findings: 0,
    });
    Ok(Artifact {
        purl: Artifact::purl_of(&r.service, &r.image_digest),
        version: version("version", &r.version)?,
        service: r.service,
        commit: r.commit,
        repository: r.repository,
        build_url: r.build_url,
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
        licences: r.licences,
        image_digest: r.image_digest,
        registered_at: at,
        source,
        committed_at,
    })
}
