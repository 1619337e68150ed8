//! Decision rights as Cedar policies: RBAC by role, business-unit isolation and segregation of
//! duties as `forbid` rules. The default set ships with the binary; an admin can replace it.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression,
};
use sha2::{Digest, Sha256};

use crate::operations::{self, GROUPS};
use crate::{AuthError, Identity, Result};

/// The policy set shipped with Flotilla.
pub const DEFAULT_POLICY: &str = include_str!("../policies/default.cedar");
/// Longest policy text accepted, in bytes.
pub const MAX_POLICY_LEN: usize = 256 * 1024;
const CACHE_LIMIT: usize = 50_000;

/// A parsed Cedar policy set and the text it came from.
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    text: String,
    set: PolicySet,
    digest: String,
}

impl AccessPolicy {
    /// Parses a policy text. Each policy should carry an `@id("…")` annotation: refusals name it.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_POLICY_LEN {
            return Err(AuthError::Policy(format!(
                "policy text is {} bytes, at most {MAX_POLICY_LEN} accepted",
                text.len()
            )));
        }
        let set = PolicySet::from_str(text).map_err(|e| AuthError::Policy(format!("{e}")))?;
        if set.policies().next().is_none() {
            return Err(AuthError::Policy("the policy set holds no policy".into()));
        }
        Ok(Self {
            text: text.to_owned(),
            set,
            digest: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// The shipped default set.
    pub fn default_set() -> Self {
        match Self::parse(DEFAULT_POLICY) {
            Ok(p) => p,
            // The shipped file is checked by a unit test; failing here is a build defect.
            Err(e) => panic!("the shipped default Cedar policy does not parse: {e}"),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// SHA-256 of the text, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The roles the policies name (`Flotilla::Role::"…"`): the roles anyone can hold rights in.
    pub fn roles(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut rest = self.text.as_str();
        while let Some(i) = rest.find("Role::\"") {
            rest = &rest[i + 7..];
            if let Some(end) = rest.find('"') {
                out.insert(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
        out
    }

    /// The name of a policy: its `@id` annotation, else Cedar's id.
    fn name(&self, id: &cedar_policy::PolicyId) -> String {
        self.set
            .annotation(id, "id")
            .map(str::to_owned)
            .unwrap_or_else(|| id.to_string())
    }
}

/// Facts about the operation's target that policies may look at (segregation of duties).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccessContext {
    /// Author of the release being decided on.
    pub author: String,
    /// Committers of the release's artifacts.
    pub committers: Vec<String>,
    /// Who requested the deviation being decided on.
    pub requester: String,
}

impl AccessContext {
    fn is_empty(&self) -> bool {
        self.author.is_empty() && self.committers.is_empty() && self.requester.is_empty()
    }
}

/// An authorisation answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Policies that decided it (the `forbid` that refused, or the `permit`s that allowed).
    pub policies: Vec<String>,
}

impl Decision {
    /// Why a refusal happened, for the caller.
    pub fn refusal_message(&self, who: &Identity, action: &str, scope: &str) -> String {
        let scope = if scope.is_empty() {
            "the platform".to_owned()
        } else {
            format!("business unit {scope:?}")
        };
        if self.policies.is_empty() {
            format!(
                "{} (roles {}) may not {action} in {scope}: no policy permits it",
                who.subject,
                who.roles.iter().cloned().collect::<Vec<_>>().join(",")
            )
        } else {
            format!(
                "{} (roles {}) may not {action} in {scope}: refused by policy {}",
                who.subject,
                who.roles.iter().cloned().collect::<Vec<_>>().join(","),
                self.policies.join(", ")
            )
        }
    }
}

/// Cached answers: identity -> action -> scope, looked up without cloning anything.
type DecisionCache = HashMap<Identity, HashMap<&'static str, HashMap<String, Arc<Decision>>>>;

struct Current {
    policy: AccessPolicy,
    cache: RwLock<(DecisionCache, usize)>,
}

/// Answers "may this identity do this action in this scope" with the current policy set.
pub struct Authorizer {
    current: ArcSwap<Current>,
    actions: Vec<Entity>,
    cedar: cedar_policy::Authorizer,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("policy_digest", &self.current.load().policy.digest)
            .finish_non_exhaustive()
    }
}

fn uid(ty: &str, id: &str) -> Result<EntityUid> {
    let ty = EntityTypeName::from_str(ty).map_err(|e| AuthError::Policy(e.to_string()))?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

fn action_entities() -> Result<Vec<Entity>> {
    let mut out = Vec::new();
    for g in GROUPS {
        out.push(Entity::new_no_attrs(
            uid("Flotilla::Action", g)?,
            HashSet::new(),
        ));
    }
    for op in operations::all() {
        out.push(Entity::new_no_attrs(
            uid("Flotilla::Action", op.action)?,
            HashSet::from([uid("Flotilla::Action", op.group)?]),
        ));
    }
    Ok(out)
}

impl Authorizer {
    pub fn new(policy: AccessPolicy) -> Result<Self> {
        Ok(Self {
            current: ArcSwap::from_pointee(Current {
                policy,
                cache: RwLock::new((HashMap::new(), 0)),
            }),
            actions: action_entities()?,
            cedar: cedar_policy::Authorizer::new(),
        })
    }

    /// An authorizer with the shipped default policies.
    pub fn with_default_policy() -> Result<Self> {
        Self::new(AccessPolicy::default_set())
    }

    /// Replaces the policy set (cached decisions go with the old one).
    pub fn replace(&self, policy: AccessPolicy) {
        tracing::info!(digest = %policy.digest, "access policy replaced");
        self.current.store(Arc::new(Current {
            policy,
            cache: RwLock::new((HashMap::new(), 0)),
        }));
    }

    /// The policy in force.
    pub fn policy(&self) -> AccessPolicy {
        self.current.load().policy.clone()
    }

    /// May `who` do `action` (a Cedar action id such as `governance:Approve`) in business unit
    /// `scope` ("" for platform-wide operations)? Answers without context are cached per policy.
    pub fn authorize(
        &self,
        who: &Identity,
        action: &'static str,
        scope: &str,
        context: &AccessContext,
    ) -> Arc<Decision> {
        let current = self.current.load();
        let cacheable = context.is_empty();
        if cacheable
            && let Some(d) = current
                .cache
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .get(who)
                .and_then(|by_action| by_action.get(action))
                .and_then(|by_scope| by_scope.get(scope))
        {
            return d.clone();
        }
        let decision = Arc::new(
            match self.evaluate(&current.policy, who, action, scope, context) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, action, "authorisation could not be evaluated; refusing");
                    Decision {
                        allowed: false,
                        policies: vec![format!("evaluation-error: {e}")],
                    }
                }
            },
        );
        if cacheable {
            let mut guard = current.cache.write().unwrap_or_else(|p| p.into_inner());
            let (cache, entries) = &mut *guard;
            if *entries >= CACHE_LIMIT {
                cache.clear();
                *entries = 0;
            }
            cache
                .entry(who.clone())
                .or_default()
                .entry(action)
                .or_default()
                .insert(scope.to_owned(), decision.clone());
            *entries += 1;
        }
        decision
    }

    /// Evaluates against a given policy (used to check a replacement before it is accepted).
    pub fn evaluate(
        &self,
        policy: &AccessPolicy,
        who: &Identity,
        action: &str,
        scope: &str,
        context: &AccessContext,
    ) -> Result<Decision> {
        let err = |e: &dyn std::fmt::Display| AuthError::Policy(e.to_string());
        let principal = uid("Flotilla::User", &who.subject)?;
        let mut roles = HashSet::new();
        let mut entities = self.actions.clone();
        for r in &who.roles {
            let role = uid("Flotilla::Role", r)?;
            roles.insert(role.clone());
            entities.push(Entity::new_no_attrs(role, HashSet::new()));
        }
        entities.push(
            Entity::new(
                principal.clone(),
                HashMap::from([
                    (
                        "name".to_owned(),
                        RestrictedExpression::new_string(who.subject.clone()),
                    ),
                    (
                        "business_unit".to_owned(),
                        RestrictedExpression::new_string(who.business_unit.clone()),
                    ),
                ]),
                roles,
            )
            .map_err(|e| err(&e))?,
        );
        let resource = uid("Flotilla::Scope", scope)?;
        entities.push(
            Entity::new(
                resource.clone(),
                HashMap::from([(
                    "business_unit".to_owned(),
                    RestrictedExpression::new_string(scope.to_owned()),
                )]),
                HashSet::new(),
            )
            .map_err(|e| err(&e))?,
        );
        let entities = Entities::from_entities(entities, None).map_err(|e| err(&e))?;
        let context = Context::from_pairs([
            (
                "author".to_owned(),
                RestrictedExpression::new_string(context.author.clone()),
            ),
            (
                "committers".to_owned(),
                RestrictedExpression::new_set(
                    context
                        .committers
                        .iter()
                        .map(|c| RestrictedExpression::new_string(c.clone())),
                ),
            ),
            (
                "requester".to_owned(),
                RestrictedExpression::new_string(context.requester.clone()),
            ),
        ])
        .map_err(|e| err(&e))?;
        let request = Request::new(
            principal,
            uid("Flotilla::Action", action)?,
            resource,
            context,
            None,
        )
        .map_err(|e| err(&e))?;
        let response = self.cedar.is_authorized(&request, &policy.set, &entities);
        for e in response.diagnostics().errors() {
            tracing::warn!(error = %e, action, "a policy failed to evaluate");
        }
        Ok(Decision {
            allowed: response.decision() == cedar_policy::Decision::Allow,
            policies: response
                .diagnostics()
                .reason()
                .map(|id| policy.name(id))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(sub: &str, role: &str, bu: &str) -> Identity {
        Identity::new(sub, [role.to_owned()], bu).expect("identity")
    }

    #[test]
    fn default_policy_parses_and_names_its_rules() {
        let a = Authorizer::with_default_policy().expect("authorizer");
        let d = a.authorize(
            &who("dev", "developer", "payments"),
            "governance:SetPolicy",
            "",
            &AccessContext::default(),
        );
        assert!(!d.allowed);
        let d = a.authorize(
            &who("ana", "service-owner", "payments"),
            "governance:Approve",
            "payments",
            &AccessContext {
                author: "ana".into(),
                ..Default::default()
            },
        );
        assert!(!d.allowed);
        assert_eq!(d.policies, vec!["sod-author-approves".to_owned()]);
        let d = a.authorize(
            &who("ana", "service-owner", "payments"),
            "governance:Approve",
            "cards",
            &AccessContext::default(),
        );
        assert_eq!(d.policies, vec!["business-unit-isolation".to_owned()]);
        let d = a.authorize(
            &who("aud", "auditor", "central"),
            "governance:ListApprovalRequests",
            "cards",
            &AccessContext::default(),
        );
        assert!(d.allowed);
    }

    #[test]
    fn the_default_policy_names_the_known_roles() {
        let roles = AccessPolicy::default_set().roles();
        for r in crate::KNOWN_ROLES {
            assert!(roles.contains(*r), "{r} missing from {roles:?}");
        }
        let p = AccessPolicy::parse(
            "@id(\"x\")\npermit (principal in Flotilla::Role::\"janitor\", action, resource);",
        )
        .expect("parses");
        assert_eq!(
            p.roles().into_iter().collect::<Vec<_>>(),
            vec!["janitor".to_owned()]
        );
    }

    #[test]
    fn replacement_changes_answers_and_bad_text_is_refused() {
        let a = Authorizer::with_default_policy().expect("authorizer");
        let dev = who("dev", "developer", "payments");
        assert!(
            !a.authorize(&dev, "governance:SetPolicy", "", &AccessContext::default())
                .allowed
        );
        let text = format!(
            "{DEFAULT_POLICY}\n@id(\"developers-set-policy\")\npermit (principal in Flotilla::Role::\"developer\", action == Flotilla::Action::\"governance:SetPolicy\", resource);\n"
        );
        a.replace(AccessPolicy::parse(&text).expect("parse"));
        assert!(
            a.authorize(&dev, "governance:SetPolicy", "", &AccessContext::default())
                .allowed
        );
        assert!(AccessPolicy::parse("permit (principal, action, resource").is_err());
        assert!(AccessPolicy::parse("// nothing\n").is_err());
    }
}
