//! A service that is not governance follows governance's access policy replacements through the
//! bus: the newer policy is put in force once, recorded in the service's own store, and found
//! there again at the next start.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use flotilla_auth::{AccessContext, Authorizer, Identity};
use flotilla_bus::inprocess::InProcessBus;
use flotilla_bus::{Publisher, Subscriber};
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_core::{ExpectedVersion, MemoryStore};
use flotilla_runtime::EventHandler;
use flotilla_runtime::access::{
    ACCESS_POLICY_ADOPTED, ACCESS_POLICY_REPLACED, AccessPolicyFollower, recorded_policy,
};
use prost::Message;

fn replaced(version: u64, policy: &str) -> NewEvent {
    NewEvent::new(
        ACCESS_POLICY_REPLACED,
        1,
        flotilla_proto::governance::v1::AccessPolicyReplaced {
            version,
            policy: policy.into(),
            sha256: String::new(),
            replaced_at: None,
        }
        .encode_to_vec(),
        Metadata::by("root", ""),
    )
}

#[tokio::test]
async fn replacements_are_followed_once_and_survive_a_restart() {
    let widened = format!(
        "{}\n@id(\"auditors-write-catalog\")\npermit (principal in Flotilla::Role::\"auditor\", action in Flotilla::Action::\"catalog-write\", resource);\n",
        flotilla_auth::policy::DEFAULT_POLICY
    );
    let governance: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    governance
        .append(AppendRequest::new(
            StreamId::parse("governance-access-policy").expect("id"),
            ExpectedVersion::NoStream,
            vec![
                replaced(1, &widened),
                replaced(2, "permit (principal, action, resource"),
            ],
        ))
        .await
        .expect("append");
    let recorded = governance.read_all(1, 10).await.expect("read");
    let bus = InProcessBus::new();
    bus.publish("governance", &recorded).await.expect("publish");
    bus.publish("governance", &recorded)
        .await
        .expect("publish again");

    let own: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let authorizer = Arc::new(Authorizer::with_default_policy().expect("authorizer"));
    let follower = AccessPolicyFollower {
        store: own.clone(),
        authorizer: authorizer.clone(),
        recorded: AtomicU64::new(0),
        in_force: Arc::new(AtomicU64::new(0)),
    };
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
    let mut rejected = 0;
    for _ in 0..4 {
        let d = deliveries.next().await.expect("delivery");
        if follower.handle(&d.event).await.is_err() {
            rejected += 1;
        }
        d.ack().await.expect("ack");
    }
    assert_eq!(
        rejected, 2,
        "the unparsable version 2 is refused on each delivery"
    );
    assert!(may_write(&authorizer), "version 1 is in force");
    let adopted: Vec<_> = own
        .read_all(1, 10)
        .await
        .expect("read")
        .into_iter()
        .filter(|e| e.event_type == ACCESS_POLICY_ADOPTED)
        .collect();
    assert_eq!(adopted.len(), 1);
    // Next start: the store says which policy is in force.
    let (version, policy) = recorded_policy(&*own)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(version, 1);
    let restarted = Authorizer::new(policy).expect("authorizer");
    assert!(may_write(&restarted));
    // Governance's own store is read the same way.
    assert!(
        recorded_policy(&*governance).await.expect("read").is_none(),
        "an unparsable newest replacement is never put in force"
    );
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
