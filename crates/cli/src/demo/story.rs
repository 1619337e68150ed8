//! The demo's story, step by step, over the services' gRPC APIs.

use std::time::{Duration, Instant};

use flotilla_auth::Bearer;
use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gov;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use serde::Serialize;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::people::People;
use crate::client::failed;
use crate::orchestration::view::{DeploymentView, StepView, progress_line};
use crate::output::{Output, table};

type Authed = InterceptedService<Channel, Bearer>;
type Orch = OrchestrationServiceClient<Authed>;
type Gov = GovernanceServiceClient<Authed>;

pub struct Addresses {
    pub governance: String,
    pub catalog: String,
    pub orchestration: String,
}

/// One line of the closing table.
#[derive(Serialize)]
struct Outcome {
    release: String,
    unit: String,
    environment: String,
    what_happened: String,
}

pub struct Story {
    addrs: Addresses,
    people: People,
    output: Output,
    step: usize,
    outcomes: Vec<Outcome>,
    channels: std::collections::HashMap<String, Channel>,
    /// The steps of each deployment as last told.
    told: std::collections::HashMap<String, Vec<StepView>>,
}

const CATALOG: &str = r#"
kind: Component
metadata: { name: payments-web, annotations: { flotilla.dev/criticality-tier: "3" } }
spec: { owner: payments-core, system: payments, dependsOn: ["component:payments-api"] }
---
kind: Component
metadata: { name: payments-api, annotations: { flotilla.dev/criticality-tier: "2" } }
spec: { owner: payments-core, system: payments, dependsOn: ["component:payments-ledger", "component:payments-fraud"] }
---
kind: Component
metadata: { name: payments-ledger, annotations: { flotilla.dev/criticality-tier: "2" } }
spec: { owner: payments-core, system: payments }
---
kind: Component
metadata: { name: payments-fraud }
spec: { owner: payments-risk, system: payments }
---
kind: Component
metadata: { name: payments-notify }
spec: { owner: payments-core, system: payments, dependsOn: ["component:payments-api"] }
---
kind: Component
metadata: { name: payments-reports }
spec: { owner: payments-data, system: payments, dependsOn: ["component:payments-ledger"] }
---
kind: Component
metadata: { name: cards-web }
spec: { owner: cards-core, system: cards, dependsOn: ["component:cards-api"] }
---
kind: Component
metadata: { name: cards-api, annotations: { flotilla.dev/criticality-tier: "2" } }
spec: { owner: cards-core, system: cards, dependsOn: ["component:cards-auth", "component:cards-ledger"] }
---
kind: Component
metadata: { name: cards-auth }
spec: { owner: cards-security, system: cards }
---
kind: Component
metadata: { name: cards-ledger }
spec: { owner: cards-core, system: cards }
---
kind: Component
metadata: { name: cards-statements }
spec: { owner: cards-data, system: cards, dependsOn: ["component:cards-ledger"] }
---
kind: Component
metadata: { name: cards-rewards }
spec: { owner: cards-growth, system: cards, dependsOn: ["component:cards-api"] }
"#;

const SERVICES: [&str; 12] = [
    "payments-web",
    "payments-api",
    "payments-ledger",
    "payments-fraud",
    "payments-notify",
    "payments-reports",
    "cards-web",
    "cards-api",
    "cards-auth",
    "cards-ledger",
    "cards-statements",
    "cards-rewards",
];

fn descriptor(service: &str, unit: &str) -> pb::Descriptor {
    pb::Descriptor {
        kind: pb::DescriptorKind::Helm as i32,
        reference: format!("oci://charts.example.com/{service}"),
        version: "2.0.0".into(),
        values: [("replicas".to_owned(), "3".to_owned())]
            .into_iter()
            .collect(),
        labels: [("team".to_owned(), format!("{unit}-core"))]
            .into_iter()
            .collect(),
        cpu_limit: "500m".into(),
        memory_limit: "512Mi".into(),
        uses: vec![],
    }
}

fn item(service: &str, unit: &str, strategy: Option<pb::strategy::Kind>) -> pb::RequestedItem {
    pb::RequestedItem {
        service: service.into(),
        version: "2.0.0".into(),
        descriptor: Some(descriptor(service, unit)),
        strategy: strategy.map(|k| pb::Strategy { kind: Some(k) }),
        migrations: vec![],
    }
}

fn now_ts(offset_secs: i64) -> prost_types::Timestamp {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    prost_types::Timestamp {
        seconds: s + offset_secs,
        nanos: 0,
    }
}

impl Story {
    pub async fn new(addrs: Addresses, people: People, output: Output) -> anyhow::Result<Self> {
        Ok(Self {
            addrs,
            people,
            output,
            step: 0,
            outcomes: Vec::new(),
            channels: Default::default(),
            told: Default::default(),
        })
    }

    async fn channel(&mut self, addr: &str) -> anyhow::Result<Channel> {
        if let Some(c) = self.channels.get(addr) {
            return Ok(c.clone());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = loop {
            match Channel::from_shared(addr.to_owned())?.connect().await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    anyhow::bail!(
                        "cannot reach {addr} ({e}); start the services with `flotilla up` or pass their addresses"
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        self.channels.insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    async fn authed(
        &mut self,
        addr: &str,
        who: &str,
        roles: &[&str],
        unit: &str,
    ) -> anyhow::Result<Authed> {
        let token = self.people.token(who, roles, unit)?;
        Ok(InterceptedService::new(
            self.channel(addr).await?,
            Bearer::try_new(&token)?,
        ))
    }

    async fn orch(&mut self, who: &str, roles: &[&str], unit: &str) -> anyhow::Result<Orch> {
        let addr = self.addrs.orchestration.clone();
        Ok(OrchestrationServiceClient::new(
            self.authed(&addr, who, roles, unit).await?,
        ))
    }

    async fn gov(&mut self, who: &str, roles: &[&str], unit: &str) -> anyhow::Result<Gov> {
        let addr = self.addrs.governance.clone();
        Ok(GovernanceServiceClient::new(
            self.authed(&addr, who, roles, unit).await?,
        ))
    }

    /// A line for people (stderr keeps stdout for the JSON answer).
    fn say(&mut self, what: impl AsRef<str>) {
        self.step += 1;
        let line = format!("[{:>2}] {}", self.step, what.as_ref());
        match self.output {
            Output::Table => println!("{line}"),
            Output::Json => eprintln!("{line}"),
        }
    }

    fn detail(&self, what: impl AsRef<str>) {
        match self.output {
            Output::Table => println!("       {}", what.as_ref()),
            Output::Json => eprintln!("       {}", what.as_ref()),
        }
    }

    fn outcome(&mut self, release: &str, unit: &str, env: &str, what: impl Into<String>) {
        self.outcomes.push(Outcome {
            release: release.into(),
            unit: unit.into(),
            environment: env.into(),
            what_happened: what.into(),
        });
    }

    /// Retries while a service catches up with what another published (the catalog reaching
    /// governance) or is still starting.
    async fn eventually<T, F, Fut>(&self, what: &str, mut call: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match call().await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s)
                    if Instant::now() < deadline
                        && (s.code() == tonic::Code::Unavailable
                            || s.message().contains("not in the service catalog")) =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(s) => return Err(failed(what, s)),
            }
        }
    }

    /// Follows a deployment, a line per step that changed, until `done` holds.
    async fn follow(
        &mut self,
        unit: &str,
        id: &str,
        done: impl Fn(&pb::Deployment) -> bool,
    ) -> anyhow::Result<pb::Deployment> {
        let mut orch = self.orch("rita", &["release-manager"], unit).await?;
        let mut seen: Vec<StepView> = self.told.remove(id).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let d = orch
                .get_deployment(pb::GetDeploymentRequest {
                    deployment_id: id.into(),
                })
                .await
                .map_err(|s| failed("get deployment", s))?
                .into_inner();
            let view = DeploymentView::from(&d);
            for s in &view.steps {
                if s.state != "pending"
                    && seen
                        .iter()
                        .find(|x| x.index == s.index)
                        .is_none_or(|b| b != s)
                {
                    self.detail(progress_line(&view, s));
                }
            }
            seen = view.steps.clone();
            if done(&d) {
                self.told.insert(id.to_owned(), seen);
                return Ok(d);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "deployment {id} did not get there in 2 minutes: {}",
                view.status
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn approve(
        &mut self,
        unit: &str,
        release: &str,
        service: &str,
        env: &str,
    ) -> anyhow::Result<()> {
        let facts = gov::ReleaseFacts {
            release: release.into(),
            version: "2.0.0".into(),
            environment: env.into(),
            service: service.into(),
            business_unit: unit.into(),
            criticality_tier: 0,
            risk_score: 20,
            author: "alice".into(),
            committers: vec!["carol".into()],
            ..Default::default()
        };
        let rm = self.gov("rita", &["release-manager"], unit).await?;
        self.eventually("open approval request", || {
            let (mut g, f) = (rm.clone(), facts.clone());
            async move {
                g.open_approval_request(gov::OpenApprovalRequestRequest {
                    release: Some(f),
                    emergency: false,
                })
                .await
            }
        })
        .await?;
        let mut owner = self.gov("sam", &["service-owner"], unit).await?;
        owner
            .approve(gov::DecideApprovalRequest {
                release: release.into(),
                environment: env.into(),
                role: "service-owner".into(),
                comment: "reviewed the change and its evidence".into(),
            })
            .await
            .map_err(|s| failed("approve", s))?;
        Ok(())
    }

    /// Promotes; a refusal is told with its reasons and answered None.
    async fn promote(
        &mut self,
        unit: &str,
        release: &str,
        env: &str,
    ) -> anyhow::Result<Option<pb::Deployment>> {
        let mut orch = self.orch("rita", &["release-manager"], unit).await?;
        match orch
            .promote_release(pb::PromoteReleaseRequest {
                release: release.into(),
                environment: env.into(),
            })
            .await
        {
            Ok(d) => Ok(Some(d.into_inner())),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                let reasons = s
                    .message()
                    .split_once(": ")
                    .map_or(s.message(), |(_, r)| r)
                    .to_owned();
                for r in reasons.split("; ") {
                    self.detail(format!("- {r}"));
                }
                Ok(None)
            }
            Err(s) => Err(failed("promote", s)),
        }
    }

    async fn record(
        &mut self,
        unit: &str,
        deployment: &str,
        name: &str,
        verdict: pb::Verdict,
        detail: &str,
    ) -> anyhow::Result<()> {
        let mut orch = self.orch("sre", &["service-owner"], unit).await?;
        orch.record_analysis(pb::RecordAnalysisRequest {
            deployment_id: deployment.into(),
            analysis: name.into(),
            verdict: verdict as i32,
            detail: detail.into(),
        })
        .await
        .map_err(|s| failed("record analysis", s))?;
        Ok(())
    }

    /// Tells the story; true when everything happened as it should.
    pub async fn tell(mut self) -> anyhow::Result<bool> {
        let started = Instant::now();
        // ---- The catalog, the policy, the builds ----
        let catalog_addr = self.addrs.catalog.clone();
        let catalog = DependencyMappingServiceClient::new(
            self.authed(&catalog_addr, "ops", &["admin"], "central")
                .await?,
        );
        let imported = self
            .eventually("import the catalog", || {
                let mut c = catalog.clone();
                async move {
                    c.import_backstage_catalog(dm::ImportBackstageCatalogRequest {
                        catalog_yaml: CATALOG.into(),
                    })
                    .await
                }
            })
            .await?;
        self.say(format!(
            "catalog: {} services of two units imported from a Backstage catalog-info.yaml, {} dependencies",
            imported.registered + imported.updated + imported.unchanged,
            imported.dependencies_declared
        ));
        let mut admin = self.orch("ops", &["admin"], "central").await?;
        admin
            .set_policy(pb::SetPolicyRequest {
                policy: Some(pb::OrchestrationPolicy {
                    licence_allow_list: vec![
                        "Apache-2.0".into(),
                        "MIT".into(),
                        "BSD-3-Clause".into(),
                    ],
                    descriptor_standard: Some(pb::DescriptorStandard {
                        required_labels: vec!["team".into()],
                        require_resource_limits: true,
                        forbid_latest_tags: true,
                    }),
                }),
            })
            .await
            .map_err(|s| failed("set policy", s))?;
        self.say("policy: licences Apache-2.0, MIT, BSD-3-Clause; descriptors labelled with their team, with limits, no `latest`");
        let mut ci = self.orch("ci", &["developer"], "platform").await?;
        for (i, s) in SERVICES.iter().enumerate() {
            ci.register_artifact(pb::RegisterArtifactRequest {
                service: (*s).into(),
                version: "2.0.0".into(),
                commit: format!("{:07x}", 0x9f2c1e7 + i),
                repository: format!("https://git.example.com/{s}"),
                build_url: format!("https://ci.example.com/{s}/118"),
                tests: Some(pb::TestResults {
                    passed: 300 + i as u32,
                    failed: 0,
                    skipped: 2,
                }),
                analysis: Some(pb::AnalysisResult {
                    tool: "sonarqube".into(),
                    passed: true,
                    findings: 0,
                }),
                licences: vec!["Apache-2.0".into()],
                image_digest: format!("sha256:{:064x}", 0xa11ce + i),
            })
            .await
            .map_err(|s| failed("register artifact", s))?;
        }
        let gpl = ci
            .register_artifact(pb::RegisterArtifactRequest {
                service: "payments-reports".into(),
                version: "2.1.0".into(),
                commit: "c0ffee1".into(),
                repository: "https://git.example.com/payments-reports".into(),
                licences: vec!["Apache-2.0".into(), "GPL-3.0-only".into()],
                image_digest: format!("sha256:{:064x}", 0xbad),
                ..Default::default()
            })
            .await
            .map_err(|s| failed("register artifact", s))?
            .into_inner();
        self.say(
            "CI registered 12 builds at 2.0.0, and payments-reports 2.1.0, which may not ship:",
        );
        for b in &gpl.blocked {
            self.detail(format!("- {b}"));
        }

        // ---- Environments, paths, the shared cluster, a freeze ----
        admin
            .define_shared_infrastructure(pb::DefineSharedInfrastructureRequest {
                infrastructure: Some(pb::SharedInfrastructure {
                    name: "pg-shared".into(),
                    capacity: 1,
                }),
            })
            .await
            .map_err(|s| failed("shared infrastructure", s))?;
        for unit in ["payments", "cards"] {
            let mut o = self.orch("rita", &["release-manager"], unit).await?;
            for (name, checks, shared) in [
                ("dev", vec!["smoke".to_owned()], vec![]),
                ("prod", vec![], vec!["pg-shared".to_owned()]),
            ] {
                o.define_environment(pb::DefineEnvironmentRequest {
                    spec: Some(pb::EnvironmentSpec {
                        business_unit: unit.into(),
                        name: name.into(),
                        checks,
                        shared,
                        ..Default::default()
                    }),
                })
                .await
                .map_err(|s| failed("define environment", s))?;
            }
            o.set_promotion_path(pb::SetPromotionPathRequest {
                business_unit: unit.into(),
                environments: vec!["dev".into(), "prod".into()],
            })
            .await
            .map_err(|s| failed("promotion path", s))?;
        }
        self.say("environments: dev (smoke-checked) -> prod for both units; prod shares pg-shared, which takes one deployment at a time");
        let mut cards_rm = self.gov("carl", &["release-manager"], "cards").await?;
        let freeze = cards_rm
            .create_freeze_window(gov::CreateFreezeWindowRequest {
                window: Some(gov::FreezeWindow {
                    name: "cards quarter-end close".into(),
                    kind: gov::WindowKind::Freeze as i32,
                    scope: Some(gov::WindowScope {
                        business_units: vec!["cards".into()],
                        environments: vec!["prod".into()],
                        tiers: vec![],
                    }),
                    schedule: Some(gov::freeze_window::Schedule::Once(gov::OnceSchedule {
                        start: Some(now_ts(-60)),
                        end: Some(now_ts(3600)),
                    })),
                    reason: "quarter-end statements run".into(),
                    business_unit: "cards".into(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(|s| failed("freeze window", s))?
            .into_inner();
        self.say("governance: cards freezes prod for its quarter-end close (the next hour)");

        // ---- Releases, planned ----
        let bg = pb::strategy::Kind::BlueGreen(pb::BlueGreenStrategy {
            pre_promotion_analysis: "preview-smoke".into(),
            post_promotion_analysis: String::new(),
            scale_down_delay_seconds: 1,
            session_drain_seconds: 1,
        });
        let canary = pb::strategy::Kind::Canary(pb::CanaryStrategy {
            steps: vec![
                pb::CanaryStep {
                    step: Some(pb::canary_step::Step::SetWeight(20)),
                },
                pb::CanaryStep {
                    step: Some(pb::canary_step::Step::Analysis("canary-judge".into())),
                },
                pb::CanaryStep {
                    step: Some(pb::canary_step::Step::SetWeight(100)),
                },
            ],
        });
        let releases = [
            (
                "payments",
                "payments-2.0.0",
                vec![
                    item("payments-ledger", "payments", None),
                    item("payments-fraud", "payments", None),
                    item("payments-api", "payments", Some(bg)),
                    item("payments-web", "payments", None),
                ],
            ),
            (
                "cards",
                "cards-2.0.0",
                vec![
                    item("cards-ledger", "cards", None),
                    item("cards-auth", "cards", None),
                    item("cards-api", "cards", Some(canary)),
                ],
            ),
        ];
        for (unit, name, items) in releases {
            let mut o = self.orch("rita", &["release-manager"], unit).await?;
            o.create_release(pb::CreateReleaseRequest {
                name: name.into(),
                business_unit: unit.into(),
                items,
                ..Default::default()
            })
            .await
            .map_err(|s| failed("create release", s))?;
            let planned = o
                .plan_release(pb::PlanReleaseRequest {
                    release: name.into(),
                })
                .await
                .map_err(|s| failed("plan release", s))?
                .into_inner();
            let waves: Vec<String> = planned
                .plan
                .map(|p| {
                    p.waves
                        .iter()
                        .map(|w| {
                            w.services
                                .iter()
                                .map(|s| s.service.clone())
                                .collect::<Vec<_>>()
                                .join(" + ")
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.say(format!(
                "{name} planned by dependency-mapping in {} waves: {}",
                waves.len(),
                waves.join(" -> ")
            ));
        }

        // ---- payments into dev: segregation of duties, a blue-green deploy ----
        self.approve_with_sod_refusal("payments", "payments-2.0.0", "payments-api", "dev")
            .await?;
        let d = self
            .promote("payments", "payments-2.0.0", "dev")
            .await?
            .ok_or_else(|| anyhow::anyhow!("payments into dev was refused"))?;
        self.say("payments-2.0.0 into dev (blue-green for payments-api):");
        let id = d.deployment_id.clone();
        self.follow("payments", &id, |d| waiting(d, "analysis"))
            .await?;
        self.record(
            "payments",
            &id,
            "preview-smoke",
            pb::Verdict::Passed,
            "preview answered 200 for 50/50 probes",
        )
        .await?;
        let d = self.follow("payments", &id, over).await?;
        self.outcome(
            "payments-2.0.0",
            "payments",
            "dev",
            DeploymentView::from(&d).status,
        );

        // ---- payments into prod: blocked, then allowed ----
        self.say("payments-2.0.0 into prod is blocked, with every reason:");
        anyhow::ensure!(
            self.promote("payments", "payments-2.0.0", "prod")
                .await?
                .is_none(),
            "prod should have been refused"
        );
        let mut o = self.orch("qa", &["developer"], "payments").await?;
        o.record_validation(pb::RecordValidationRequest {
            business_unit: "payments".into(),
            environment: "dev".into(),
            release: "payments-2.0.0".into(),
            check: "smoke".into(),
            passed: true,
        })
        .await
        .map_err(|s| failed("record validation", s))?;
        self.approve("payments", "payments-2.0.0", "payments-api", "prod")
            .await?;
        self.say("dev's smoke check recorded and prod approved: payments-2.0.0 into prod (it holds pg-shared)");
        let d = self
            .promote("payments", "payments-2.0.0", "prod")
            .await?
            .ok_or_else(|| anyhow::anyhow!("payments into prod was refused"))?;
        let pay_prod = d.deployment_id.clone();
        self.follow("payments", &pay_prod, |d| waiting(d, "analysis"))
            .await?;

        // ---- cards: dev, then prod meets the freeze and the shared cluster ----
        self.approve("cards", "cards-2.0.0", "cards-api", "dev")
            .await?;
        let d = self
            .promote("cards", "cards-2.0.0", "dev")
            .await?
            .ok_or_else(|| anyhow::anyhow!("cards into dev was refused"))?;
        self.say("cards-2.0.0 into dev (a canary for cards-api):");
        let cid = d.deployment_id.clone();
        self.follow("cards", &cid, |d| waiting(d, "analysis"))
            .await?;
        self.record(
            "cards",
            &cid,
            "canary-judge",
            pb::Verdict::Passed,
            "score 92 of 100 (pass 75)",
        )
        .await?;
        let d = self.follow("cards", &cid, over).await?;
        self.outcome(
            "cards-2.0.0",
            "cards",
            "dev",
            DeploymentView::from(&d).status,
        );
        let mut o = self.orch("qa", &["developer"], "cards").await?;
        o.record_validation(pb::RecordValidationRequest {
            business_unit: "cards".into(),
            environment: "dev".into(),
            release: "cards-2.0.0".into(),
            check: "smoke".into(),
            passed: true,
        })
        .await
        .map_err(|s| failed("record validation", s))?;
        self.approve("cards", "cards-2.0.0", "cards-api", "prod")
            .await?;
        self.say("cards-2.0.0 into prod, while payments holds pg-shared and cards is frozen:");
        anyhow::ensure!(
            self.promote("cards", "cards-2.0.0", "prod")
                .await?
                .is_none(),
            "cards into prod should have been refused"
        );
        self.outcome(
            "cards-2.0.0",
            "cards",
            "prod",
            "refused: freeze window and CapacityConflict with payments-2.0.0",
        );

        // ---- payments finishes; the freeze is lifted; the canary fails and rolls back ----
        self.say(
            "payments' preview passes its analysis; the switch, then the old colour scaled down:",
        );
        self.record(
            "payments",
            &pay_prod,
            "preview-smoke",
            pb::Verdict::Passed,
            "preview answered 200 for 50/50 probes",
        )
        .await?;
        let d = self.follow("payments", &pay_prod, over).await?;
        self.outcome(
            "payments-2.0.0",
            "payments",
            "prod",
            DeploymentView::from(&d).status,
        );
        cards_rm
            .cancel_freeze_window(gov::CancelFreezeWindowRequest {
                window_id: freeze.window_id.clone(),
                reason: "close finished early".into(),
            })
            .await
            .map_err(|s| failed("cancel freeze window", s))?;
        self.say("the cards freeze is lifted and pg-shared is free: cards-2.0.0 into prod");
        let d = self
            .promote("cards", "cards-2.0.0", "prod")
            .await?
            .ok_or_else(|| anyhow::anyhow!("cards into prod was refused again"))?;
        let cprod = d.deployment_id.clone();
        self.follow("cards", &cprod, |d| waiting(d, "analysis"))
            .await?;
        self.say("the canary judgement fails: the failed step rolls back every service the release touched, in reverse");
        self.record(
            "cards",
            &cprod,
            "canary-judge",
            pb::Verdict::Failed,
            "p99 latency 412 ms against 180 ms (High)",
        )
        .await?;
        let d = self.follow("cards", &cprod, over).await?;
        let view = DeploymentView::from(&d);
        self.outcome(
            "cards-2.0.0",
            "cards",
            "prod",
            format!("{}: {}", view.status, view.reason),
        );

        let rolled_back = view.status == "rolled-back";
        match self.output {
            Output::Json => crate::format::print_json(&self.outcomes)?,
            Output::Table => {
                println!();
                table(
                    &["release", "unit", "environment", "what happened"],
                    &self
                        .outcomes
                        .iter()
                        .map(|o| {
                            vec![
                                o.release.clone(),
                                o.unit.clone(),
                                o.environment.clone(),
                                o.what_happened.clone(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
                println!(
                    "\n{} steps in {:.1} s",
                    self.step,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(rolled_back)
    }

    /// The author tries to approve her own release (refused), then a service owner approves.
    async fn approve_with_sod_refusal(
        &mut self,
        unit: &str,
        release: &str,
        service: &str,
        env: &str,
    ) -> anyhow::Result<()> {
        let facts = gov::ReleaseFacts {
            release: release.into(),
            version: "2.0.0".into(),
            environment: env.into(),
            service: service.into(),
            business_unit: unit.into(),
            risk_score: 20,
            author: "alice".into(),
            committers: vec!["carol".into()],
            ..Default::default()
        };
        let rm = self.gov("rita", &["release-manager"], unit).await?;
        self.eventually("open approval request", || {
            let (mut g, f) = (rm.clone(), facts.clone());
            async move {
                g.open_approval_request(gov::OpenApprovalRequestRequest {
                    release: Some(f),
                    emergency: false,
                })
                .await
            }
        })
        .await?;
        let mut alice = self.gov("alice", &["service-owner"], unit).await?;
        let refused = alice
            .approve(gov::DecideApprovalRequest {
                release: release.into(),
                environment: env.into(),
                role: "service-owner".into(),
                comment: "lgtm".into(),
            })
            .await;
        match refused {
            Err(s) if s.code() == tonic::Code::PermissionDenied => {
                self.say(format!(
                    "{release} into {env}: alice, its author, may not approve it:"
                ));
                self.detail(format!("- {}", s.message()));
            }
            Err(s) => return Err(failed("approve", s)),
            Ok(_) => anyhow::bail!("the author's own approval was accepted"),
        }
        let mut owner = self.gov("sam", &["service-owner"], unit).await?;
        owner
            .approve(gov::DecideApprovalRequest {
                release: release.into(),
                environment: env.into(),
                role: "service-owner".into(),
                comment: "reviewed the change and its evidence".into(),
            })
            .await
            .map_err(|s| failed("approve", s))?;
        self.detail("- sam (service owner) approved");
        Ok(())
    }
}

fn over(d: &pb::Deployment) -> bool {
    matches!(
        pb::DeploymentStatus::try_from(d.status),
        Ok(pb::DeploymentStatus::Succeeded
            | pb::DeploymentStatus::RolledBack
            | pb::DeploymentStatus::Failed)
    )
}

fn waiting(d: &pb::Deployment, kind: &str) -> bool {
    d.steps
        .iter()
        .any(|s| s.kind == kind && s.state == pb::StepState::Started as i32 && s.outcome.is_none())
}
