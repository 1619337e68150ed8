//! A service that is not governance follows governance's access policy replacements through the
//! bus, when they are signed by a trusted key for this deployment and come from its governance:
//! the newer policy is put in force once, recorded in the service's own store, and found there
//! again at the next start.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use flotilla_auth::{AccessContext, Authorizer, Identity, PolicySigner, PolicyVerifier};
use flotilla_bus::inprocess::InProcessBus;
use flotilla_bus::{Namespace, Publisher, Subscriber};
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_core::{ExpectedVersion, MemoryStore};
use flotilla_runtime::EventHandler;
use flotilla_runtime::access::{
    ACCESS_POLICY_ADOPTED, ACCESS_POLICY_REPLACED, AccessPolicyFollower, recorded_policy,
};
use prost::Message;
use sha2::Digest as _;

fn replaced(
    signer: &PolicySigner,
    namespace: &str,
    version: u64,
    policy: &str,
    signed_for: (&str, u64),
) -> NewEvent {
    let sha256 = hex::encode(sha2::Sha256::digest(policy.as_bytes()));
    NewEvent::new(
        ACCESS_POLICY_REPLACED,
        1,
        flotilla_proto::common::v1::AccessPolicyReplaced {
            version,
            policy: policy.into(),
            sha256: sha256.clone(),
            replaced_at: None,
            namespace: namespace.into(),
            signature: signer
                .sign(signed_for.0, signed_for.1, &sha256)
                .expect("sign"),
            signing_key: signer.public_key(),
        }
        .encode_to_vec(),
        Metadata::by("root", ""),
    )
}

/// A replacement as recorded before the contract moved to `flotilla.common.v1` (same fields).
fn legacy(mut e: NewEvent) -> NewEvent {
    e.event_type = "flotilla.governance.v1.AccessPolicyReplaced".into();
    e
}

fn follower(
    own: Arc<dyn EventStore>,
    authorizer: Arc<Authorizer>,
    trusted: &PolicySigner,
    namespace: &Namespace,
) -> AccessPolicyFollower {
    AccessPolicyFollower {
        store: own,
        authorizer,
        recorded: Arc::new(AtomicU64::new(0)),
        in_force: Arc::new(AtomicU64::new(0)),
        namespace: namespace.clone(),
        source: "governance".into(),
        keys: Arc::new(PolicyVerifier::new(&[trusted.public_key()]).expect("key")),
    }
}

/// Replacements signed by the trusted key for this namespace and version are followed, once,
/// and found in the store at the next start; others are refused with the reason.
#[tokio::test]
async fn signed_replacements_are_followed_once_and_survive_a_restart() {
    let widen = |n: u32| {
        format!(
            "{}\n@id(\"auditors-write-catalog-{n}\")\npermit (principal in Flotilla::Role::\"auditor\", action in Flotilla::Action::\"catalog-write\", resource);\n",
            flotilla_auth::policy::DEFAULT_POLICY
        )
    };
    let ns = Namespace::new("acme").expect("ns");
    let governance_key = PolicySigner::generate().expect("key");
    let intruder = PolicySigner::generate().expect("key");
    let governance: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    governance
        .append(AppendRequest::new(
            StreamId::parse("governance-access-policy").expect("id"),
            ExpectedVersion::NoStream,
            vec![
                legacy(replaced(&governance_key, "acme", 1, &widen(1), ("acme", 1))),
                // Not Cedar.
                replaced(
                    &governance_key,
                    "acme",
                    2,
                    "permit (principal, action, resource",
                    ("acme", 2),
                ),
                // Signed by a key this deployment does not trust.
                replaced(&intruder, "acme", 3, &widen(3), ("acme", 3)),
                // Signed by the right key, but for another deployment.
                replaced(&governance_key, "acme", 4, &widen(4), ("other", 4)),
                // Signed for another version (a replay of an old signature).
                replaced(&governance_key, "acme", 5, &widen(5), ("acme", 1)),
            ],
        ))
        .await
        .expect("append");
    let recorded = governance.read_all(1, 10).await.expect("read");
    let bus = InProcessBus::with_namespace(ns.clone());
    let out = flotilla_bus::conformance::outgoing(&bus, "governance", &recorded);
    bus.publish("governance", &out).await.expect("publish");
    bus.publish("governance", &out)
        .await
        .expect("publish again");

    let own: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let authorizer = Arc::new(Authorizer::with_default_policy().expect("authorizer"));
    let follower = follower(own.clone(), authorizer.clone(), &governance_key, &ns);
    let auditor = Identity::new("aud", ["auditor".to_owned()], "central").expect("identity");
    let may_write = |a: &Authorizer| {
        a.authorize(
            &auditor,
            "dependency:RegisterService",
            "",
            &AccessContext::default(),
        )
        .allowed
    };
    assert!(!may_write(&authorizer));
    let mut deliveries = bus
        .subscribe("governance", "dependency-mapping-access-policy")
        .await
        .expect("subscribe");
    let mut refusals = Vec::new();
    for _ in 0..out.len() * 2 {
        let d = deliveries.next().await.expect("delivery");
        if let Err(e) = follower.handle(&d.event).await {
            refusals.push(e.to_string());
        }
        d.ack().await.expect("ack");
    }
    assert_eq!(
        refusals.len(),
        8,
        "versions 2-5 refused on each delivery: {refusals:?}"
    );
    assert!(
        refusals.iter().any(|r| r.contains("does not verify")),
        "{refusals:?}"
    );
    assert!(
        may_write(&authorizer),
        "version 1 is in force (recorded under the old package name: the same contract)"
    );
    let adopted: Vec<_> = own
        .read_all(1, 10)
        .await
        .expect("read")
        .into_iter()
        .filter(|e| e.event_type == ACCESS_POLICY_ADOPTED)
        .collect();
    assert_eq!(adopted.len(), 1);
    let a = flotilla_proto::common::v1::AccessPolicyAdopted::decode(adopted[0].payload.as_slice())
        .expect("decode");
    assert_eq!(a.signing_key, governance_key.public_key());
    // Next start: the store says which policy is in force.
    let keys = PolicyVerifier::new(&[governance_key.public_key()]).expect("key");
    let (version, policy) = recorded_policy(&*own, None, &keys, "acme")
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(version, 1);
    // Its signature is checked again: a key the service no longer trusts drops it.
    let other = PolicyVerifier::new(&[intruder.public_key()]).expect("key");
    assert!(
        recorded_policy(&*own, None, &other, "acme")
            .await
            .expect("read")
            .is_none()
    );
    let restarted = Authorizer::new(policy).expect("authorizer");
    assert!(may_write(&restarted));
}

/// A replacement that does not come from this deployment's governance is refused however it
/// is signed: another namespace's source, or another service.
#[tokio::test]
async fn replacements_from_other_sources_are_refused() {
    let ns = Namespace::new("acme").expect("ns");
    let key = PolicySigner::generate().expect("key");
    let text = format!(
        "{}\n@id(\"x\")\npermit (principal in Flotilla::Role::\"janitor\", action, resource);\n",
        flotilla_auth::policy::DEFAULT_POLICY
    );
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    store
        .append(AppendRequest::new(
            StreamId::parse("governance-access-policy").expect("id"),
            ExpectedVersion::NoStream,
            vec![replaced(&key, "acme", 1, &text, ("acme", 1))],
        ))
        .await
        .expect("append");
    let e = store.read_all(1, 1).await.expect("read").remove(0);
    let own: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let authorizer = Arc::new(Authorizer::with_default_policy().expect("authorizer"));
    let f = follower(own.clone(), authorizer, &key, &ns);
    for (namespace, service) in [("other", "governance"), ("acme", "orchestration")] {
        let ce = flotilla_bus::CloudEvent::from_recorded(
            &Namespace::new(namespace).expect("ns"),
            service,
            "access-policy",
            &e,
        );
        let refused = f.handle(&ce).await.expect_err("wrong source");
        assert!(
            refused.to_string().contains("/acme/governance"),
            "{refused}"
        );
    }
    assert!(own.read_all(1, 10).await.expect("read").is_empty());
    let ce = flotilla_bus::CloudEvent::from_recorded(&ns, "governance", "access-policy", &e);
    f.handle(&ce)
        .await
        .expect("the deployment's own governance");
}

/// A flood of refused calls is recorded one by one up to the rate limit, then as one summary.
#[tokio::test]
async fn refusal_floods_are_summarised() {
    use flotilla_runtime::access::RefusalRecorder;
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let recorder = RefusalRecorder::start_limited(
        std::collections::HashMap::new(),
        store.clone(),
        5,
        std::time::Duration::from_millis(300),
    );
    // The first window tick fires at once; let it pass so the count starts fresh.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    use flotilla_auth::RefusalSink;
    for i in 0..12 {
        recorder.refused(flotilla_auth::AccessRefusal {
            identity: None,
            path: format!("/x.y.v1.Z/Call{i}"),
            code: tonic::Code::Unauthenticated,
            reason: "missing bearer token".into(),
            policies: vec![],
        });
    }
    let mut events = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        events = store.read_all(1, 100).await.expect("read");
        if events.len() >= 6 {
            break;
        }
    }
    assert_eq!(events.len(), 6, "5 one by one and a summary");
    let last = flotilla_proto::common::v1::AccessRefused::decode(events[5].payload.as_slice())
        .expect("decode");
    assert!(
        last.reason.starts_with("7 further refusals"),
        "{}",
        last.reason
    );
}
