//! Approvals in the demo: governance opens each request from risk-validation's assessment of
//! the plan; the demo waits for it, tells the score and its largest factors, and gives the
//! approvals it requires.

use std::time::{Duration, Instant};

use flotilla_proto::governance::v1 as gov;
use flotilla_proto::risk::v1 as risk;

use super::story::Story;
use crate::client::failed;

impl Story {
    /// Governance's request for the release entering `env`, once it holds risk-validation's
    /// current assessment; the assessment is told.
    async fn assessed_request(
        &mut self,
        unit: &str,
        release: &str,
        env: &str,
    ) -> anyhow::Result<gov::ApprovalRequest> {
        let mut g = self.gov("rita", &["release-manager"], unit).await?;
        let mut r = self.risk("rita", &["release-manager"], unit).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let assessed = r
                .get_risk_assessments(risk::GetRiskAssessmentsRequest {
                    release: release.into(),
                    environment: env.into(),
                })
                .await
                .ok()
                .and_then(|a| a.into_inner().assessments.into_iter().next());
            let request = g
                .get_approval_request(gov::GetApprovalRequestRequest {
                    release: release.into(),
                    environment: env.into(),
                })
                .await
                .ok()
                .map(tonic::Response::into_inner);
            if let (Some(a), Some(q)) = (&assessed, &request)
                && q.risk_assessed
                && q.release
                    .as_ref()
                    .is_some_and(|f| f.risk_score == a.risk_score)
            {
                let mut top: Vec<&risk::RiskFactor> =
                    a.factors.iter().filter(|f| f.points >= 0.5).collect();
                top.sort_by(|x, y| y.points.total_cmp(&x.points));
                self.say(format!(
                    "{release} into {env}: risk-validation scored it {} (tier {} {}); governance asks for {}",
                    a.risk_score,
                    a.criticality_tier,
                    a.service,
                    q.requirements
                        .iter()
                        .map(|r| format!("{} x{}", r.role, r.required))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                for f in top.iter().take(3) {
                    self.detail(format!("- {:.1} points: {}", f.points, f.explanation));
                }
                return Ok(q.clone());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "governance opened no approval request for {release} into {env} from risk-validation's assessment in a minute; is risk-validation running (flotilla status)?"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every approval governance's request requires: sam as the service owner, someone of
    /// the unit holding each other role.
    pub(super) async fn approve(
        &mut self,
        unit: &str,
        release: &str,
        env: &str,
    ) -> anyhow::Result<()> {
        let request = self.assessed_request(unit, release, env).await?;
        for q in &request.requirements {
            for i in 0..q.required.saturating_sub(q.given) {
                let who = if q.role == "service-owner" && i == 0 {
                    "sam".to_owned()
                } else {
                    format!("{}-{}", q.role, i + 1)
                };
                self.gov(&who, &[q.role.as_str()], unit)
                    .await?
                    .approve(gov::DecideApprovalRequest {
                        release: release.into(),
                        environment: env.into(),
                        role: q.role.clone(),
                        comment: "reviewed the change and its evidence".into(),
                    })
                    .await
                    .map_err(|s| failed("approve", s))?;
                self.detail(format!("- {who} ({}) approved", q.role));
            }
        }
        Ok(())
    }

    /// The release's author (rita created it) tries to approve it as a service owner too
    /// (refused: segregation of duties), then the approvals are given.
    pub(super) async fn approve_with_sod_refusal(
        &mut self,
        unit: &str,
        release: &str,
        env: &str,
    ) -> anyhow::Result<()> {
        self.assessed_request(unit, release, env).await?;
        let refused = self
            .gov("rita", &["release-manager", "service-owner"], unit)
            .await?
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
                    "{release} into {env}: rita, its author, may not approve it:"
                ));
                self.detail(format!("- {}", s.message()));
            }
            Err(s) => return Err(failed("approve", s)),
            Ok(_) => anyhow::bail!("the author's own approval was accepted"),
        }
        self.approve(unit, release, env).await
    }
}
