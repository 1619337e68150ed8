//! The governance policy and the platform's access policy.

use flotilla_core::decider::Decision;

use super::*;

impl Governance {
    /// A new policy version, validated against the roles anyone can hold.
    pub(super) fn set_policy(&self, c: SetPolicy) -> Result<Decision<Event>> {
        let SetPolicy {
            policy,
            expected_version,
            at,
            known_roles,
        } = c;
        if expected_version != self.policy_version {
            return Err(DomainError::StalePolicy {
                expected: expected_version,
                current: self.policy_version,
            });
        }
        policy.validate_with(&known_roles)?;
        decided(
            StreamKey::Policy,
            vec![Event::PolicySet {
                version: self.policy_version + 1,
                policy,
                at,
            }],
        )
    }

    /// The next access policy version (its text checked and signed by the app).
    pub(super) fn replace_access_policy(&self, c: ReplaceAccessPolicy) -> Result<Decision<Event>> {
        let ReplaceAccessPolicy {
            policy,
            sha256,
            expected_version,
            at,
            signed,
        } = c;
        let current = self.access_policy.as_ref().map(|p| p.0).unwrap_or(0);
        if expected_version != current {
            return Err(DomainError::StalePolicy {
                expected: expected_version,
                current,
            });
        }
        decided(
            StreamKey::AccessPolicy,
            vec![Event::AccessPolicyReplaced {
                version: current + 1,
                policy,
                sha256,
                at,
                signed,
            }],
        )
    }
}
