//! Access control for every Flotilla service.
//!
//! - [`token`]: JWT bearer tokens (HS256 for development, RS256 from a JWKS file or URL).
//! - [`policy`]: decision rights as Cedar policies, a default set shipped in
//!   `policies/default.cedar` that an admin can replace.
//! - [`operations`]: every guarded gRPC operation and the Cedar action it maps to.
//! - [`layer`]: the interceptor every gRPC server runs: no valid token is `UNAUTHENTICATED`,
//!   a valid one that the policies refuse is `PERMISSION_DENIED`; both are reported to a
//!   [`layer::RefusalSink`] so the runtime can record them as events.

use std::collections::BTreeSet;

pub mod layer;
pub mod operations;
pub mod policy;
pub mod signing;
pub mod token;

pub use layer::{AccessRefusal, AuthLayer, Bearer, Caller, RefusalSink};
pub use policy::{AccessContext, AccessPolicy, Authorizer, Decision};
pub use signing::{PolicySigner, PolicyVerifier};
pub use token::{KeySource, TokenIssuer, TokenVerifier};

/// Errors of access control.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "missing bearer token: send `authorization: Bearer <jwt>` (for development: `flotilla token issue --role R --bu B`)"
    )]
    MissingToken,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("invalid token: no key with id {0:?}")]
    UnknownKey(String),
    #[error("invalid identity: {0}")]
    InvalidIdentity(String),
    #[error("key configuration: {0}")]
    Keys(String),
    #[error("access policy is not valid: {0}")]
    Policy(String),
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// The roles Flotilla's default policies know. Others may appear in tokens; replacement
/// policies may give them rights.
pub const KNOWN_ROLES: &[&str] = &[
    "admin",
    "release-manager",
    "developer",
    "service-owner",
    "security",
    "business",
    "cab",
    "compliance-officer",
    "auditor",
    "scheduler",
];

/// Who is calling: a person or a service account, their roles and business unit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub subject: String,
    pub roles: BTreeSet<String>,
    pub business_unit: String,
}

fn check_name(what: &str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Err(AuthError::InvalidIdentity(format!("{what} is empty")));
    }
    if s.len() > max {
        return Err(AuthError::InvalidIdentity(format!(
            "{what} is longer than {max} bytes"
        )));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(AuthError::InvalidIdentity(format!(
            "{what} holds a control character"
        )));
    }
    Ok(())
}

impl Identity {
    /// Checks and builds an identity: a subject, at least one role, a business unit.
    pub fn new(
        subject: &str,
        roles: impl IntoIterator<Item = String>,
        business_unit: &str,
    ) -> Result<Self> {
        check_name("subject", subject, 256)?;
        check_name("business unit", business_unit, 128)?;
        let roles: BTreeSet<String> = roles.into_iter().collect();
        if roles.is_empty() {
            return Err(AuthError::InvalidIdentity("token carries no role".into()));
        }
        if roles.len() > 32 {
            return Err(AuthError::InvalidIdentity(
                "token carries more than 32 roles".into(),
            ));
        }
        for r in &roles {
            check_name("role", r, 64)?;
        }
        Ok(Self {
            subject: subject.to_owned(),
            roles,
            business_unit: business_unit.to_owned(),
        })
    }

    fn from_claims(c: &token::Claims) -> Result<Self> {
        Self::new(&c.sub, c.roles.iter().cloned(), &c.bu)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }
}
