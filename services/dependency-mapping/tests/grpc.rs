//! The dependency-mapping service over gRPC on a real SQLite store: commands, validation that
//! changes nothing, impact, co-deployment groups, release plans, and identical answers after the
//! service is stopped and started again on the same store.

use flotilla_dependency_mapping::DependencyMappingModule;
use flotilla_proto::dependency::v1 as pb;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_runtime::testkit::{self, Bearer, TestServer};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Client = DependencyMappingServiceClient<InterceptedService<Channel, Bearer>>;

struct Running {
    client: Client,
    server: TestServer,
}

async fn start(db: &std::path::Path) -> Running {
    let store = flotilla_store::open(&format!("sqlite://{}", db.display()), "unused")
        .await
        .expect("store");
    let server = TestServer::start(&DependencyMappingModule, store).await;
    let client = DependencyMappingServiceClient::with_interceptor(
        server.channel().await,
        Bearer::new(&testkit::token("release-bot", &["admin"], "central")),
    );
    Running { client, server }
}

fn entry(name: &str, tier: u32, pii: bool, bu: &str) -> pb::ServiceEntry {
    pb::ServiceEntry {
        name: name.into(),
        owner_team: "team-a".into(),
        business_unit: bu.into(),
        criticality_tier: tier,
        handles_personal_data: pii,
        data_classification: pb::DataClassification::Confidential as i32,
        runtime: pb::Runtime::Microservice as i32,
    }
}

fn dep(c: &str, p: &str, kind: pb::EdgeKind) -> pb::DeclareDependencyRequest {
    pb::DeclareDependencyRequest {
        dependency: Some(pb::Dependency {
            consumer: c.into(),
            provider: p.into(),
            kind: kind as i32,
            data_flows: vec!["payment-card".into()],
        }),
    }
}

async fn answers(
    c: &mut Client,
) -> (
    Vec<pb::ImpactEntry>,
    Vec<pb::CoDeploymentGroup>,
    pb::ReleasePlan,
    Vec<pb::ServiceEntry>,
    pb::DependencyDrift,
    pb::Footprint,
    pb::VersionSkew,
) {
    let impact = c
        .analyze_impact(pb::AnalyzeImpactRequest {
            service: "ledger".into(),
        })
        .await
        .expect("impact")
        .into_inner()
        .entries;
    let groups = c
        .get_co_deployment_groups(pb::GetCoDeploymentGroupsRequest {})
        .await
        .expect("groups")
        .into_inner()
        .groups;
    let plan = c
        .plan_release(pb::PlanReleaseRequest {
            items: vec![
                pb::ReleaseItem {
                    service: "checkout".into(),
                    version: "2.0.0".into(),
                },
                pb::ReleaseItem {
                    service: "ledger".into(),
                    version: "9.1.0".into(),
                },
            ],
        })
        .await
        .expect("plan")
        .into_inner();
    let services = c
        .list_services(pb::ListServicesRequest::default())
        .await
        .expect("list")
        .into_inner()
        .services;
    let footprint = c
        .get_footprint(pb::GetFootprintRequest {
            environment: "prod".into(),
            as_of: None,
            tag: String::new(),
        })
        .await
        .expect("footprint")
        .into_inner();
    let skew = c
        .get_version_skew(pb::GetVersionSkewRequest::default())
        .await
        .expect("skew")
        .into_inner();
    (
        impact,
        groups,
        plan,
        services,
        drift_of(c).await,
        footprint,
        skew,
    )
}

async fn drift_of(c: &mut Client) -> pb::DependencyDrift {
    c.get_dependency_drift(pb::GetDependencyDriftRequest {})
        .await
        .expect("drift")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_graph_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("dependency-mapping.db");
    let mut svc = start(&db).await;
    let c = &mut svc.client;
    for s in [
        entry("web", 2, false, "retail"),
        entry("checkout", 1, true, "retail"),
        entry("payments", 1, true, "finance"),
        entry("ledger", 1, false, "finance"),
        entry("fraud", 2, true, "risk"),
    ] {
        let r = c
            .register_service(pb::RegisterServiceRequest { service: Some(s) })
            .await
            .expect("register")
            .into_inner();
        assert!(r.changed);
    }
    for d in [
        dep("web", "checkout", pb::EdgeKind::SyncApi),
        dep("checkout", "payments", pb::EdgeKind::SyncApi),
        dep("payments", "ledger", pb::EdgeKind::Database),
        dep("payments", "fraud", pb::EdgeKind::SyncApi),
        dep("fraud", "payments", pb::EdgeKind::SyncApi),
    ] {
        c.declare_dependency(d).await.expect("declare");
    }
    // A retried command (same command id) gets its first outcome, not ALREADY_EXISTS.
    let cmd = uuid::Uuid::now_v7().to_string();
    let with_id = |entry: pb::ServiceEntry| {
        let mut r = tonic::Request::new(pb::RegisterServiceRequest {
            service: Some(entry),
        });
        r.metadata_mut()
            .insert("x-flotilla-command-id", cmd.parse().expect("ascii"));
        r
    };
    let first = c
        .register_service(with_id(entry("billing", 2, false, "billing")))
        .await
        .expect("first")
        .into_inner();
    let retry = c
        .register_service(with_id(entry("billing", 2, false, "billing")))
        .await
        .expect("retried register")
        .into_inner();
    assert_eq!(retry.catalog_version, first.catalog_version);
    let plain = c
        .register_service(pb::RegisterServiceRequest {
            service: Some(entry("billing", 2, false, "billing")),
        })
        .await
        .expect_err("no command id");
    assert_eq!(plain.code(), Code::AlreadyExists);

    let version_before = c
        .declare_dependency(dep("web", "checkout", pb::EdgeKind::SyncApi))
        .await
        .expect("redeclare")
        .into_inner();
    assert!(
        !version_before.changed,
        "redeclaring the same edge changes nothing"
    );

    // Bad input of every kind: precise codes, nothing changes.
    let cases: Vec<(tonic::Status, Code, &str)> = vec![
        (
            c.register_service(pb::RegisterServiceRequest {
                service: Some(entry("web", 2, false, "retail")),
            })
            .await
            .expect_err("dup"),
            Code::AlreadyExists,
            "already registered",
        ),
        (
            c.register_service(pb::RegisterServiceRequest {
                service: Some(entry("Bad Name", 2, false, "retail")),
            })
            .await
            .expect_err("name"),
            Code::InvalidArgument,
            "service name",
        ),
        (
            c.register_service(pb::RegisterServiceRequest {
                service: Some(entry("new", 9, false, "retail")),
            })
            .await
            .expect_err("tier"),
            Code::InvalidArgument,
            "criticality tier",
        ),
        (
            c.register_service(pb::RegisterServiceRequest {
                service: Some(pb::ServiceEntry {
                    runtime: 0,
                    ..entry("new", 2, false, "x")
                }),
            })
            .await
            .expect_err("runtime"),
            Code::InvalidArgument,
            "runtime",
        ),
        (
            c.register_service(pb::RegisterServiceRequest { service: None })
                .await
                .expect_err("missing"),
            Code::InvalidArgument,
            "service",
        ),
        (
            c.declare_dependency(dep("web", "web", pb::EdgeKind::SyncApi))
                .await
                .expect_err("self"),
            Code::InvalidArgument,
            "itself",
        ),
        (
            c.declare_dependency(dep("web", "ghost", pb::EdgeKind::SyncApi))
                .await
                .expect_err("unknown"),
            Code::NotFound,
            "ghost",
        ),
        (
            c.declare_dependency(dep("web", "ledger", pb::EdgeKind::Unspecified))
                .await
                .expect_err("kind"),
            Code::InvalidArgument,
            "edge kind",
        ),
        (
            c.remove_dependency(pb::RemoveDependencyRequest {
                consumer: "ledger".into(),
                provider: "web".into(),
            })
            .await
            .expect_err("no edge"),
            Code::NotFound,
            "does not depend",
        ),
        (
            c.analyze_impact(pb::AnalyzeImpactRequest {
                service: "ghost".into(),
            })
            .await
            .expect_err("impact"),
            Code::NotFound,
            "ghost",
        ),
        (
            c.get_service(pb::GetServiceRequest {
                name: "ghost".into(),
            })
            .await
            .expect_err("get"),
            Code::NotFound,
            "ghost",
        ),
        (
            c.plan_release(pb::PlanReleaseRequest {
                items: vec![pb::ReleaseItem {
                    service: "web".into(),
                    version: "".into(),
                }],
            })
            .await
            .expect_err("plan"),
            Code::InvalidArgument,
            "version",
        ),
    ];
    for (st, code, needle) in cases {
        assert_eq!(st.code(), code, "{st:?}");
        assert!(
            st.message().contains(needle),
            "{:?} should mention {needle:?}",
            st.message()
        );
    }
    let after = c
        .declare_dependency(dep("web", "checkout", pb::EdgeKind::SyncApi))
        .await
        .expect("redeclare")
        .into_inner();
    assert_eq!(
        after.catalog_version, version_before.catalog_version,
        "refused commands appended nothing"
    );

    let (impact, groups, plan, services, ..) = answers(c).await;
    assert_eq!(
        impact
            .iter()
            .map(|e| (e.service.as_str(), e.distance))
            .collect::<Vec<_>>(),
        [("payments", 1), ("checkout", 2), ("fraud", 2), ("web", 3)]
    );
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0]
            .members
            .iter()
            .map(|m| m.service.as_str())
            .collect::<Vec<_>>(),
        ["fraud", "payments"]
    );
    let waves: Vec<Vec<&str>> = plan
        .waves
        .iter()
        .map(|w| w.services.iter().map(|s| s.service.as_str()).collect())
        .collect();
    assert_eq!(waves, vec![vec!["ledger"], vec!["checkout"]]);
    assert_eq!(
        plan.impact
            .iter()
            .map(|e| e.service.as_str())
            .collect::<Vec<_>>(),
        ["payments", "fraud", "web"]
    );
    assert_eq!(services.len(), 6, "five services and billing");

    // Runtime observations against declarations, and the matrix.
    let calls = vec![
        pb::ObservedCall {
            client: "web".into(),
            server: "checkout".into(),
            calls: 50,
        },
        pb::ObservedCall {
            client: "web".into(),
            server: "shadow-api".into(),
            calls: 2,
        },
    ];
    c.record_observed_calls(pb::RecordObservedCallsRequest {
        calls,
        observed_at: Some(prost_types::Timestamp {
            seconds: 1_764_000_000,
            nanos: 0,
        }),
    })
    .await
    .expect("observe");
    let bad = c
        .record_observed_calls(pb::RecordObservedCallsRequest {
            calls: vec![pb::ObservedCall {
                client: "web".into(),
                server: "checkout".into(),
                calls: 0,
            }],
            observed_at: None,
        })
        .await
        .expect_err("zero");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let drift = c
        .get_dependency_drift(pb::GetDependencyDriftRequest {})
        .await
        .expect("drift")
        .into_inner();
    assert_eq!(
        drift
            .observed_not_declared
            .iter()
            .map(|e| (e.client.as_str(), e.server.as_str(), e.calls))
            .collect::<Vec<_>>(),
        [("web", "shadow-api", 2)]
    );
    assert_eq!(
        drift.observed_not_declared[0]
            .first_seen
            .as_ref()
            .map(|t| t.seconds),
        Some(1_764_000_000)
    );
    assert_eq!(drift.declared_not_observed.len(), 4);
    let csv = c
        .get_dependency_matrix(pb::GetDependencyMatrixRequest {
            format: pb::MatrixFormat::Csv as i32,
            services: vec![],
            business_unit: "finance".into(),
        })
        .await
        .expect("csv")
        .into_inner();
    assert_eq!(csv.content_type, "text/csv");
    assert_eq!(
        csv.body,
        "consumer\\provider,ledger,payments\nledger,,\npayments,database:payment-card,\n"
    );
    let json = c
        .get_dependency_matrix(pb::GetDependencyMatrixRequest {
            format: pb::MatrixFormat::Json as i32,
            services: vec!["web".into(), "checkout".into()],
            business_unit: String::new(),
        })
        .await
        .expect("json")
        .into_inner();
    let v: serde_json::Value = serde_json::from_str(&json.body).expect("json body");
    assert_eq!(v["services"], serde_json::json!(["checkout", "web"]));
    assert_eq!(v["cells"][0]["kind"], "sync_api");
    let bad = c
        .get_dependency_matrix(pb::GetDependencyMatrixRequest::default())
        .await
        .expect_err("format");
    assert_eq!(bad.code(), Code::InvalidArgument);

    // Footprints and version skew.
    let ts = |secs: i64| {
        Some(prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        })
    };
    for (svc, v, at) in [
        ("checkout", "1.0.0", 1_000),
        ("payments", "3.1.0", 1_000),
        ("checkout", "1.2.0", 2_000),
    ] {
        c.record_deployment(pb::RecordDeploymentRequest {
            environment: "prod".into(),
            service: svc.into(),
            version: v.into(),
            finished_at: ts(at),
        })
        .await
        .expect("deploy");
    }
    let st = c
        .record_deployment(pb::RecordDeploymentRequest {
            environment: "prod".into(),
            service: "checkout".into(),
            version: "one".into(),
            finished_at: None,
        })
        .await
        .expect_err("semver");
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(
        st.message().contains("semantic version"),
        "{}",
        st.message()
    );
    c.tag_footprint(pb::TagFootprintRequest {
        environment: "prod".into(),
        tag: "before-upgrade".into(),
        at: ts(1_500),
    })
    .await
    .expect("tag");
    let tagged = c
        .get_footprint(pb::GetFootprintRequest {
            environment: "prod".into(),
            as_of: None,
            tag: "before-upgrade".into(),
        })
        .await
        .expect("tag")
        .into_inner();
    assert_eq!(
        tagged
            .services
            .iter()
            .map(|s| (s.service.as_str(), s.version.as_str()))
            .collect::<Vec<_>>(),
        [("checkout", "1.0.0"), ("payments", "3.1.0")]
    );
    let st = c
        .get_footprint(pb::GetFootprintRequest {
            environment: "prod".into(),
            as_of: None,
            tag: "no-such-tag".into(),
        })
        .await
        .expect_err("tag");
    assert_eq!(st.code(), Code::NotFound);
    let st = c
        .tag_footprint(pb::TagFootprintRequest {
            environment: "prod".into(),
            tag: "before-upgrade".into(),
            at: None,
        })
        .await
        .expect_err("tag twice");
    assert_eq!(st.code(), Code::AlreadyExists);
    let st = c
        .plan_release(pb::PlanReleaseRequest {
            items: vec![pb::ReleaseItem {
                service: "web".into(),
                version: "latest".into(),
            }],
        })
        .await
        .expect_err("semver");
    assert_eq!(st.code(), Code::InvalidArgument);
    let now = c
        .get_footprint(pb::GetFootprintRequest {
            environment: "prod".into(),
            as_of: None,
            tag: String::new(),
        })
        .await
        .expect("now")
        .into_inner();
    assert_eq!(now.services[0].version, "1.2.0");
    let past = c
        .get_footprint(pb::GetFootprintRequest {
            environment: "prod".into(),
            as_of: ts(1_999),
            tag: String::new(),
        })
        .await
        .expect("past")
        .into_inner();
    assert_eq!(past.services[0].version, "1.0.0");
    c.declare_version_requirement(pb::DeclareVersionRequirementRequest {
        consumer: "checkout".into(),
        provider: "payments".into(),
        requirement: "^3.1".into(),
    })
    .await
    .expect("requirement");
    let st = c
        .declare_version_requirement(pb::DeclareVersionRequirementRequest {
            consumer: "checkout".into(),
            provider: "payments".into(),
            requirement: "three".into(),
        })
        .await
        .expect_err("range");
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(
        c.get_version_skew(pb::GetVersionSkewRequest::default())
            .await
            .expect("skew")
            .into_inner()
            .violations
            .is_empty()
    );
    let plan = c
        .plan_release(pb::PlanReleaseRequest {
            items: vec![pb::ReleaseItem {
                service: "payments".into(),
                version: "4.0.0".into(),
            }],
        })
        .await
        .expect("plan")
        .into_inner();
    let broke: Vec<(&str, &str, &str)> = plan
        .skew_violations
        .iter()
        .map(|v| {
            (
                v.environment.as_str(),
                v.consumer.as_str(),
                v.provider_version.as_str(),
            )
        })
        .collect();
    assert_eq!(broke, [("prod", "checkout", "4.0.0")]);

    // Schemas: JSON Schema checked against what a consumer uses; protobuf descriptor sets too.
    let schema = |props: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({"type": "object", "properties": props}))
            .expect("json")
    };
    let publish = |svc: &str,
                   name: &str,
                   version: &str,
                   format: pb::SchemaFormat,
                   content: Vec<u8>,
                   check_only: bool| pb::PublishSchemaRequest {
        service: svc.into(),
        name: name.into(),
        version: version.into(),
        format: format as i32,
        content,
        check_only,
    };
    let v1 = c
        .publish_schema(publish(
            "payments",
            "payment-events",
            "1.0.0",
            pb::SchemaFormat::JsonSchema,
            schema(serde_json::json!({"id": {"type": "string"}, "amount": {"type": "number"}})),
            false,
        ))
        .await
        .expect("v1")
        .into_inner();
    assert!(v1.compatible && v1.published && v1.compared_against.is_empty());
    c.declare_schema_use(pb::DeclareSchemaUseRequest {
        consumer: "checkout".into(),
        provider: "payments".into(),
        name: "payment-events".into(),
        version: "1.0.0".into(),
    })
    .await
    .expect("use");
    let v11 = c.publish_schema(publish("payments", "payment-events", "1.1.0", pb::SchemaFormat::JsonSchema, schema(serde_json::json!({"id": {"type": "string"}, "amount": {"type": "number"}, "currency": {"type": "string"}})), false)).await.expect("v1.1").into_inner();
    assert!(v11.compatible && v11.published);
    assert_eq!(
        v11.compared_against
            .iter()
            .map(|b| (b.used_by.as_str(), b.version.as_str()))
            .collect::<Vec<_>>(),
        [("checkout", "1.0.0")]
    );
    let v2 = c
        .publish_schema(publish(
            "payments",
            "payment-events",
            "2.0.0",
            pb::SchemaFormat::JsonSchema,
            schema(serde_json::json!({"id": {"type": "string"}})),
            false,
        ))
        .await
        .expect("v2")
        .into_inner();
    assert!(!v2.compatible && !v2.published);
    assert_eq!(
        v2.breaking_changes,
        ["property amount was removed (against 1.0.0 used by checkout)"]
    );
    let st = c
        .publish_schema(publish(
            "payments",
            "payment-events",
            "3.0.0",
            pb::SchemaFormat::JsonSchema,
            b"{oops".to_vec(),
            true,
        ))
        .await
        .expect_err("malformed");
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(
        st.message().contains("malformed JSON Schema"),
        "{}",
        st.message()
    );
    let st = c
        .declare_schema_use(pb::DeclareSchemaUseRequest {
            consumer: "checkout".into(),
            provider: "payments".into(),
            name: "payment-events".into(),
            version: "2.0.0".into(),
        })
        .await
        .expect_err("unpublished");
    assert_eq!(st.code(), Code::InvalidArgument);
    // Our own contracts as a protobuf schema: drop one field and the check names it.
    use prost::Message;
    let fds = flotilla_proto::FILE_DESCRIPTOR_SET.to_vec();
    c.publish_schema(publish(
        "fraud",
        "flotilla-api",
        "1.0.0",
        pb::SchemaFormat::ProtobufDescriptorSet,
        fds.clone(),
        false,
    ))
    .await
    .expect("proto v1");
    let mut edited = prost_types::FileDescriptorSet::decode(fds.as_slice()).expect("fds");
    let file = edited
        .file
        .iter_mut()
        .find(|f| f.message_type.iter().any(|m| m.name() == "ServiceStatus"))
        .expect("common");
    let status = file
        .message_type
        .iter_mut()
        .find(|m| m.name() == "ServiceStatus")
        .expect("ServiceStatus");
    status.field.retain(|f| f.name() != "head_hash");
    let pv2 = c
        .publish_schema(publish(
            "fraud",
            "flotilla-api",
            "1.1.0",
            pb::SchemaFormat::ProtobufDescriptorSet,
            edited.encode_to_vec(),
            true,
        ))
        .await
        .expect("proto v2")
        .into_inner();
    assert_eq!(
        pv2.breaking_changes,
        [
            "field flotilla.common.v1.ServiceStatus.head_hash (number 3) was removed (against 1.0.0 used by latest published)"
        ]
    );
    assert!(!pv2.published);

    let before = answers(c).await;
    // Stop, start again on the same store: identical answers.
    svc.server.stop().await;
    let mut again = start(&db).await;
    assert_eq!(answers(&mut again.client).await, before);
    again.server.stop().await;
}

/// The interceptor guards the catalog: no token is UNAUTHENTICATED, a role without catalog
/// rights or a service of another business unit is PERMISSION_DENIED, and every refusal is
/// reported with the policy that refused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_access_is_guarded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = start(&dir.path().join("catalog.db")).await;
    let channel = Channel::from_shared(format!("http://{}", svc.server.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut anonymous = DependencyMappingServiceClient::new(channel.clone());
    let e = anonymous
        .list_services(pb::ListServicesRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let as_user = |roles: &[&str], bu: &str| {
        DependencyMappingServiceClient::with_interceptor(
            channel.clone(),
            Bearer::new(&testkit::token("pat", roles, bu)),
        )
    };
    let register = |bu: &str| pb::RegisterServiceRequest {
        service: Some(entry(&format!("svc-{bu}"), 2, false, bu)),
    };
    let e = as_user(&["auditor"], "central")
        .register_service(register("payments"))
        .await
        .expect_err("auditors do not write");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = as_user(&["developer"], "payments")
        .register_service(register("cards"))
        .await
        .expect_err("other unit");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("business-unit-isolation"), "{e:?}");
    as_user(&["developer"], "payments")
        .register_service(register("payments"))
        .await
        .expect("own unit");
    as_user(&["auditor"], "central")
        .list_services(pb::ListServicesRequest::default())
        .await
        .expect("auditors read");
    // Dependencies are changed by the consumer's unit only.
    let mut admin = svc.client.clone();
    admin
        .register_service(register("cards"))
        .await
        .expect("admin registers for any unit");
    let e = as_user(&["developer"], "payments")
        .declare_dependency(dep("svc-cards", "svc-payments", pb::EdgeKind::SyncApi))
        .await
        .expect_err("another unit's consumer");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    as_user(&["developer"], "payments")
        .declare_dependency(dep("svc-payments", "svc-cards", pb::EdgeKind::SyncApi))
        .await
        .expect("own consumer, any provider");
    let refusals = svc.server.refusals.take();
    let codes: Vec<_> = refusals.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        vec![
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::PermissionDenied,
            Code::PermissionDenied
        ]
    );
    assert_eq!(
        refusals[2].policies,
        vec!["business-unit-isolation".to_owned()]
    );
    svc.server.stop().await;
}

/// Unbounded input is refused before it costs anything and is never echoed whole; every
/// catalog event carries the unit it is about (not the caller's `central`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_is_bounded_and_events_carry_their_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("dm.db");
    let mut r = start(&db).await;
    let e = r
        .client
        .register_service(pb::RegisterServiceRequest {
            service: Some(entry(&"a".repeat(300_000), 1, false, "retail")),
        })
        .await
        .expect_err("a 300 kB name");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().len() < 500,
        "echoed whole: {} bytes",
        e.message().len()
    );
    for bad_unit in ["retail\n", "*platform*", "Retail", "re\u{200b}tail"] {
        let e = r
            .client
            .register_service(pb::RegisterServiceRequest {
                service: Some(entry("till", 2, false, bad_unit)),
            })
            .await
            .expect_err("bad unit");
        assert_eq!(e.code(), Code::InvalidArgument, "{bad_unit:?}: {e:?}");
    }
    let started = std::time::Instant::now();
    let e = r
        .client
        .pin_co_deployment(pb::PinCoDeploymentRequest {
            pin: Some(pb::CoDeploymentPin {
                group: "everything".into(),
                services: (0..50_000).map(|i| format!("svc-{i}")).collect(),
                reason: "flood".into(),
            }),
        })
        .await
        .expect_err("50k names");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("at most 200"), "{e:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "refused before per-name work: {:?}",
        started.elapsed()
    );
    let mut flows = dep("till", "ledger", pb::EdgeKind::SyncApi);
    if let Some(d) = flows.dependency.as_mut() {
        d.data_flows = vec!["pii".into(), "pii".into()];
    }
    let e = r
        .client
        .declare_dependency(flows)
        .await
        .expect_err("repeated flow");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("repeats"), "{e:?}");

    r.client
        .register_service(pb::RegisterServiceRequest {
            service: Some(entry("ledger", 1, true, "payments")),
        })
        .await
        .expect("register");
    r.client
        .register_service(pb::RegisterServiceRequest {
            service: Some(entry("till", 2, false, "retail")),
        })
        .await
        .expect("register");
    r.client
        .declare_dependency(dep("till", "ledger", pb::EdgeKind::SyncApi))
        .await
        .expect("declare");
    r.server.stop().await;
    let store = flotilla_store::open(&format!("sqlite://{}", db.display()), "unused")
        .await
        .expect("store");
    let units: Vec<(String, String)> = store
        .read_all(1, 100)
        .await
        .expect("read")
        .into_iter()
        .filter(|e| e.stream_id.as_str() == "dependency-catalog")
        .map(|e| (e.event_type, e.metadata.business_unit))
        .collect();
    assert_eq!(
        units,
        vec![
            (
                "flotilla.dependency.v1.ServiceRegistered".to_owned(),
                "payments".to_owned()
            ),
            (
                "flotilla.dependency.v1.ServiceRegistered".to_owned(),
                "retail".to_owned()
            ),
            // A dependency is the consumer's.
            (
                "flotilla.dependency.v1.DependencyDeclared".to_owned(),
                "retail".to_owned()
            ),
        ]
    );
}
