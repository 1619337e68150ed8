//! Artifacts from CI and the policy they and descriptors are held to.

use flotilla_core::decider::Decision;

use super::*;

/// A SPDX licence id: letters, digits, `.`, `-` and `+` (`Apache-2.0`, `GPL-3.0-or-later`).
fn spdx(field: &str, id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
    {
        return Err(invalid(
            field,
            format!("{} is not an SPDX licence id", shown(id)),
        ));
    }
    Ok(())
}

impl Orchestration {
    pub(super) fn set_policy(&self, c: SetPolicy) -> Result<Decision<Event>> {
        let SetPolicy { policy, at } = c;
        let allow: Vec<&String> = policy.licence_allow_list.iter().collect();
        list("licence_allow_list", &allow, 500)?;
        for l in &allow {
            spdx("licence_allow_list", l)?;
        }
        let std = &policy.descriptor_standard;
        list(
            "descriptor_standard.required_labels",
            &std.required_labels,
            50,
        )?;
        for l in &std.required_labels {
            id("descriptor_standard.required_labels", l)?;
        }
        if self.policy == policy {
            return decided(StreamKey::Policy, vec![]);
        }
        decided(StreamKey::Policy, vec![Event::PolicySet { policy, at }])
    }

    pub(super) fn register_artifact(&self, c: RegisterArtifact) -> Result<Decision<Event>> {
        let a = c.artifact;
        label("service", &a.service)?;
        let digest = a.image_digest.strip_prefix("sha256:").unwrap_or_default();
        if digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(
                "image_digest",
                format!("{} is not sha256:<64 hex digits>", shown(&a.image_digest)),
            ));
        }
        if a.purl != Artifact::purl_of(&a.service, &a.image_digest) {
            return Err(invalid("purl", "does not name the service's image digest"));
        }
        text("commit", &a.commit, 128)?;
        names::reference("repository", &a.repository, 512).map_err(name_error)?;
        names::optional_text("build_url", &a.build_url, 1024).map_err(name_error)?;
        list("licences", &a.licences, 200)?;
        for l in &a.licences {
            spdx("licences", l)?;
        }
        names::optional_text("analysis.tool", &a.analysis.tool, 128).map_err(name_error)?;
        let key = StreamKey::Artifact(a.purl.clone());
        if let Some(known) = self.artifacts.get(&a.purl) {
            // The same build registered again (a retried pipeline, the CDEvent after the gRPC
            // call) changes nothing; another build under the same digest is refused.
            let same = known.service == a.service
                && known.version == a.version
                && known.commit == a.commit;
            if same {
                return decided(key, vec![]);
            }
            return Err(DomainError::AlreadyExists(format!(
                "{} is registered as {} {} (commit {})",
                a.purl, known.service, known.version, known.commit
            )));
        }
        if let Some(other) = self
            .artifacts
            .values()
            .find(|x| x.service == a.service && x.version == a.version)
        {
            return Err(DomainError::AlreadyExists(format!(
                "{} {} is already registered as {}; a version names one build",
                a.service, a.version, other.purl
            )));
        }
        decided(key, vec![Event::ArtifactRegistered(Box::new(a))])
    }
}

/// What a descriptor breaks of the organisation's standard (empty: nothing).
pub(super) fn descriptor_findings(
    service: &str,
    d: &Descriptor,
    std: &DescriptorStandard,
) -> Vec<String> {
    let mut out = Vec::new();
    for label in &std.required_labels {
        if d.labels.get(label).is_none_or(|v| v.trim().is_empty()) {
            out.push(format!(
                "{service}: descriptor lacks the required label {label}"
            ));
        }
    }
    if std.require_resource_limits
        && (d.cpu_limit.trim().is_empty() || d.memory_limit.trim().is_empty())
    {
        out.push(format!(
            "{service}: descriptor sets no {} limit",
            if d.cpu_limit.trim().is_empty() {
                "cpu"
            } else {
                "memory"
            }
        ));
    }
    if std.forbid_latest_tags {
        let latest = |v: &str| v == "latest" || v.ends_with(":latest");
        if latest(&d.version) {
            out.push(format!("{service}: descriptor version is latest"));
        }
        for (k, v) in &d.values {
            if latest(v) {
                out.push(format!("{service}: value {k} uses the latest tag"));
            }
        }
    }
    out
}
