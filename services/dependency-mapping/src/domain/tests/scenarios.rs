//! Given/when/then: the catalog decider alone, from recorded events to what a command decides.

use flotilla_core::testing::Scenario;

use super::*;

fn catalog() -> StreamId {
    StreamId::singleton(CATALOG_STREAM)
}

fn registered() -> Vec<(StreamId, Event)> {
    ["web", "checkout"]
        .into_iter()
        .map(|n| {
            (
                catalog(),
                Event::ServiceRegistered(spec(n, 2, false, "retail")),
            )
        })
        .collect()
}

#[test]
fn a_dependency_between_known_services_is_declared_once() {
    let edge = dep("web", "checkout", EdgeKind::SyncApi);
    let s = Scenario::<Catalog>::given(registered())
        .when(Command::DeclareDependency(edge.clone()))
        .then(vec![Event::DependencyDeclared(edge.clone())]);
    // The same declaration again changes nothing.
    let s = s.when(Command::DeclareDependency(edge)).then(vec![]);
    // An unknown provider is refused, naming it.
    s.when(Command::DeclareDependency(dep(
        "web",
        "ghost",
        EdgeKind::SyncApi,
    )))
    .then_refused(|e| matches!(e, DomainError::UnknownService(n) if n.as_str() == "ghost"));
}

#[test]
fn a_schema_check_publishes_only_a_clean_verdict() {
    let doc = SchemaDoc {
        service: name("checkout"),
        name: "orders".into(),
        version: semver::Version::new(1, 0, 0),
        format: SchemaFormat::JsonSchema,
        content: br#"{"type":"object"}"#.to_vec(),
    };
    let verdict = |breaking: Vec<String>| CompatibilityVerdict {
        service: doc.service.clone(),
        name: doc.name.clone(),
        version: doc.version.clone(),
        compared: vec![],
        breaking,
        at: Timestamp(1),
    };
    let s = Scenario::<Catalog>::given(registered())
        .when(Command::CheckSchema {
            doc: doc.clone(),
            verdict: verdict(vec!["property id was removed".into()]),
            publish: true,
        })
        .then(vec![Event::CompatibilityChecked(verdict(vec![
            "property id was removed".into(),
        ]))]);
    assert!(s.schemas.is_empty(), "a breaking version is not published");
    s.when(Command::CheckSchema {
        doc: doc.clone(),
        verdict: verdict(vec![]),
        publish: true,
    })
    .then(vec![
        Event::CompatibilityChecked(verdict(vec![])),
        Event::SchemaPublished(doc),
    ]);
}
