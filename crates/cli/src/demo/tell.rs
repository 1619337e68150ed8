//! The demo's story itself: what each person does, in order, and what they see.

use std::time::Instant;

use flotilla_proto::compliance::v1 as cp;
use flotilla_proto::compliance::v1::compliance_service_client::ComplianceServiceClient;
use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gov;
use flotilla_proto::orchestration::v1 as pb;

use super::cast::*;
use super::story::{Story, over, waiting};
use crate::client::failed;
use crate::orchestration::view::DeploymentView;
use crate::output::{Output, table};

impl Story {
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
                committed_at: None,
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
        let now = crate::format::now()?;
        let in_secs = |t: &prost_types::Timestamp, secs: i64| prost_types::Timestamp {
            seconds: t.seconds + secs,
            nanos: 0,
        };
        cards_rm
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
                        start: Some(in_secs(&now, -60)),
                        end: Some(in_secs(&now, 3600)),
                    })),
                    reason: "quarter-end statements run".into(),
                    business_unit: "cards".into(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(|s| failed("freeze window", s))?;
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
            .map_err(|s| {
                if s.code() == tonic::Code::AlreadyExists {
                    anyhow::anyhow!(
                        "{name} exists already: the demo has run on this node before; run it beside a fresh node (flotilla up --data-dir /tmp/flotilla-demo --listen 127.0.0.1:50061, then flotilla demo --addr http://127.0.0.1:50061 --data-dir /tmp/flotilla-demo)"
                    )
                } else {
                    failed("create release", s)
                }
            })?;
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
        self.approve_with_sod_refusal("payments", "payments-2.0.0", "dev")
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
        self.approve("payments", "payments-2.0.0", "prod").await?;
        self.say("dev's smoke check recorded and prod approved: payments-2.0.0 into prod (it holds pg-shared)");
        let d = self
            .promote("payments", "payments-2.0.0", "prod")
            .await?
            .ok_or_else(|| anyhow::anyhow!("payments into prod was refused"))?;
        let pay_prod = d.deployment_id.clone();
        self.follow("payments", &pay_prod, |d| waiting(d, "analysis"))
            .await?;

        // ---- cards: dev, then prod meets the freeze and the shared cluster ----
        self.approve("cards", "cards-2.0.0", "dev").await?;
        let d = self
            .promote("cards", "cards-2.0.0", "dev")
            .await?
            .ok_or_else(|| anyhow::anyhow!("cards into dev was refused"))?;
        self.say("cards-2.0.0 into dev (a canary for cards-api):");
        let cid = d.deployment_id.clone();
        self.follow("cards", &cid, |d| waiting(d, "analysis"))
            .await?;
        self.judge("cards", &cid, "cards-2.0.0", "dev", true)
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
        self.approve("cards", "cards-2.0.0", "prod").await?;
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

        // ---- payments finishes; a deviation waives the freeze; the canary fails and rolls back ----
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
        // What ran in prod now: payments-2.0.0 (the audit report of prod at this instant).
        let payments_ran = crate::format::instant()?;
        self.deviate_from_freeze("cards-2.0.0", "prod").await?;
        self.say("pg-shared is free and the freeze waived for it: cards-2.0.0 into prod");
        let d = self
            .promote("cards", "cards-2.0.0", "prod")
            .await?
            .ok_or_else(|| anyhow::anyhow!("cards into prod was refused again"))?;
        let cprod = d.deployment_id.clone();
        self.follow("cards", &cprod, |d| waiting(d, "analysis"))
            .await?;
        self.say("the canary judgement fails: the failed step rolls back every service the release touched, in reverse");
        self.judge("cards", &cprod, "cards-2.0.0", "prod", false)
            .await?;
        let d = self.follow("cards", &cprod, over).await?;
        let view = DeploymentView::from(&d);
        self.outcome(
            "cards-2.0.0",
            "cards",
            "prod",
            format!("{}: {}", view.status, view.reason),
        );

        let canary_rolled_back = view.status == "rolled-back";

        // ---- payments-api breaches its watch in prod: rolled back by monitoring's request ----
        let breach_rolled_back = self
            .breach("payments", "payments-2.0.0", "payments-api", &pay_prod)
            .await?;
        self.ledger_caught_up().await?;
        let report = self
            .audit_report(
                "cards-2.0.0",
                cp::GetAuditReportRequest {
                    release: "cards-2.0.0".into(),
                    ..Default::default()
                },
                // The ledger takes the services' events from the bus: wait for the rollback.
                |r| r.json.contains("RollbackStarted"),
            )
            .await?;
        let prod = self
            .audit_report(
                "prod",
                cp::GetAuditReportRequest {
                    environment: "prod".into(),
                    at: Some(payments_ran),
                    ..Default::default()
                },
                |r| r.release.contains("payments-2.0.0"),
            )
            .await?;
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
        println!("audit report of prod before the breach: {}", prod.display());
        println!("audit report of cards-2.0.0: {}", report.display());
        Ok(canary_rolled_back && breach_rolled_back)
    }

    /// Waits until the compliance ledger linked orchestration's chain up to its head as it is
    /// now (the ledger takes the events from the bus, moments after they are stored).
    async fn ledger_caught_up(&mut self) -> anyhow::Result<()> {
        let head = self
            .orch("ops", &["admin"], "central")
            .await?
            .get_status(flotilla_proto::common::v1::GetStatusRequest {})
            .await
            .map_err(|s| failed("orchestration's status", s))?
            .into_inner()
            .head_position;
        let addr = self.addrs.compliance.clone();
        let mut c = ComplianceServiceClient::new(
            self.authed(&addr, "audrey", &["auditor"], "central")
                .await?,
        );
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let linked = c
                .list_sources(cp::ListSourcesRequest {})
                .await
                .map_err(|s| failed("the ledger's sources", s))?
                .into_inner()
                .sources
                .iter()
                .find(|s| s.service == "orchestration")
                .map_or(0, |s| s.linked_to);
            if linked >= head || Instant::now() > deadline {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The compliance ledger's audit report of a release (or an environment), once `ready`
    /// says the ledger has what it should show, written as JSON and HTML named after `name`;
    /// answers the HTML page's path.
    async fn audit_report(
        &mut self,
        name: &str,
        request: cp::GetAuditReportRequest,
        ready: impl Fn(&cp::AuditReport) -> bool,
    ) -> anyhow::Result<std::path::PathBuf> {
        let addr = self.addrs.compliance.clone();
        let mut c = ComplianceServiceClient::new(
            self.authed(&addr, "audrey", &["auditor"], "central")
                .await?,
        )
        .max_decoding_message_size(256 * 1024 * 1024);
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let report = loop {
            match c.get_audit_report(request.clone()).await {
                Ok(r) if ready(r.get_ref()) => break r.into_inner(),
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                Ok(r) => break r.into_inner(),
                Err(s) => return Err(failed("the audit report", s)),
            }
        };
        std::fs::create_dir_all(&self.report_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", self.report_dir.display()))?;
        let html = self.report_dir.join(format!("{name}-audit.html"));
        let json = self.report_dir.join(format!("{name}-audit.json"));
        std::fs::write(&html, &report.html)
            .and_then(|()| std::fs::write(&json, &report.json))
            .map_err(|e| anyhow::anyhow!("cannot write the audit report: {e}"))?;
        self.say(format!(
            "the compliance ledger's audit report of {}: {} events from every service, each proven against its signed checkpoint of size {}",
            report.release, report.lines, report.tree_size
        ));
        Ok(html)
    }
}
