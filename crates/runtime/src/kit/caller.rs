//! The caller of a request, for every service's handlers: who (the identity the access
//! interceptor verified), the access checker for the target's unit and segregation-of-duties
//! facts, and the metadata of what the call causes (actor, trace, command and correlation ids).

use flotilla_auth::{AccessContext, AuthLayer};
use flotilla_core::event::Metadata;
use uuid::Uuid;

/// Header carrying a client's command id: a retry with the same id changes nothing twice.
pub const COMMAND_ID: &str = "x-flotilla-command-id";
/// Header carrying a client's correlation id.
pub const CORRELATION_ID: &str = "x-flotilla-correlation-id";

/// A verified caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub caller: flotilla_auth::Caller,
    access: AuthLayer,
    metadata: Metadata,
    personal: Option<std::sync::Arc<flotilla_core::personal::PersonalData>>,
}

fn header_uuid<T>(req: &tonic::Request<T>, name: &str) -> Result<Option<Uuid>, tonic::Status> {
    let Some(v) = req.metadata().get(name) else {
        return Ok(None);
    };
    let text = v.to_str().map_err(|_| {
        crate::kit::status(
            tonic::Code::InvalidArgument,
            &format!("{name}: is not ASCII; send a UUID"),
        )
    })?;
    Uuid::parse_str(text.trim()).map(Some).map_err(|_| {
        crate::kit::status(
            tonic::Code::InvalidArgument,
            &format!(
                "{name}: {} is not a UUID; send a UUID (e.g. a v7) to make the call retryable",
                flotilla_core::names::shown(text)
            ),
        )
    })
}

impl Caller {
    /// The caller of a request that passed the access interceptor. A malformed command or
    /// correlation id is `INVALID_ARGUMENT` (never silently ignored: the client meant retries
    /// to be safe).
    pub fn of<T>(req: &tonic::Request<T>) -> Result<Self, tonic::Status> {
        let (caller, access) = flotilla_auth::layer::caller_of(req)?;
        let mut metadata = Metadata::by(
            caller.identity.subject.clone(),
            caller.identity.business_unit.clone(),
        );
        metadata.traceparent = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .filter(|t| flotilla_bus::trace_context::valid(t))
            .map(str::to_owned);
        metadata.command_id = header_uuid(req, COMMAND_ID)?;
        metadata.correlation_id = header_uuid(req, CORRELATION_ID)?;
        Ok(Self {
            caller,
            access,
            metadata,
            personal: req
                .extensions()
                .get::<std::sync::Arc<flotilla_core::personal::PersonalData>>()
                .cloned(),
        })
    }

    /// Seals a personal value of the request that identifies its subject (an e-mail, a
    /// committer): it is recorded, published and decided on as its token, and revealed on the
    /// way out. (A handler called outside a served node, as in a unit test, has no keyring:
    /// the value stays as given.)
    pub async fn seal(&self, value: &str) -> Result<String, tonic::Status> {
        self.seal_about(value, value).await
    }

    /// Seals a personal value about a subject (a reporter's name, under their e-mail).
    pub async fn seal_about(&self, subject: &str, value: &str) -> Result<String, tonic::Status> {
        let Some(p) = &self.personal else {
            return Ok(value.to_owned());
        };
        p.seal_about(subject, value).await.map_err(|e| {
            tracing::error!(error = %e, "a personal value cannot be sealed");
            tonic::Status::unavailable(format!(
                "the keyring is unavailable ({e}); retry shortly, or check keyring_url"
            ))
        })
    }

    pub fn subject(&self) -> &str {
        &self.caller.identity.subject
    }

    pub fn business_unit(&self) -> &str {
        &self.caller.identity.business_unit
    }

    pub fn roles(&self) -> &std::collections::BTreeSet<String> {
        &self.caller.identity.roles
    }

    pub fn command_id(&self) -> Option<Uuid> {
        self.metadata.command_id
    }

    /// Business-unit isolation (and, with `context`, segregation of duties) for one target;
    /// a refusal is recorded and answered `PERMISSION_DENIED`.
    pub fn allow_in(
        &self,
        business_unit: &str,
        context: &AccessContext,
    ) -> Result<(), tonic::Status> {
        self.access
            .authorize_in(&self.caller, business_unit, context)
    }

    /// The policies' answer for a target, without refusing.
    pub fn decide_in(
        &self,
        business_unit: &str,
        context: &AccessContext,
    ) -> std::sync::Arc<flotilla_auth::Decision> {
        self.access.decide_in(&self.caller, business_unit, context)
    }

    /// Records a refusal the policies decided and answers its status.
    pub fn refuse(
        &self,
        business_unit: &str,
        decision: std::sync::Arc<flotilla_auth::Decision>,
    ) -> tonic::Status {
        self.access.refuse(&self.caller, business_unit, decision)
    }

    /// Business-unit isolation for a target whose very existence is its unit's business: outside
    /// the caller's scope the answer is `absent()`, the same as for a target that does not
    /// exist (the refusal is still recorded), so names cannot be probed across units.
    pub fn allow_or_hide(
        &self,
        business_unit: &str,
        absent: impl FnOnce() -> tonic::Status,
    ) -> Result<(), tonic::Status> {
        let d = self.decide_in(business_unit, &AccessContext::default());
        if d.allowed {
            return Ok(());
        }
        let _recorded = self.refuse(business_unit, d);
        Err(absent())
    }

    /// Whether the caller may see targets of a unit (lists filter by it without recording).
    pub fn sees(&self, business_unit: &str) -> bool {
        self.decide_in(business_unit, &AccessContext::default())
            .allowed
    }

    /// The id of what the call creates: derived from the command id when the caller sent one,
    /// so a retry names the same thing; fresh otherwise. `kind` keeps ids of different things
    /// created by one command apart.
    pub fn new_id(&self, kind: Uuid) -> Uuid {
        match self.metadata.command_id {
            Some(c) => Uuid::new_v5(&kind, c.as_bytes()),
            None => Uuid::now_v7(),
        }
    }

    /// The metadata of what the call causes (the app sets the unit the events are about).
    pub fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }
}
