//! Dependency-mapping's domain tests: helpers here, tests by family.

use std::collections::BTreeSet;

use super::graph::{
    co_deployment_groups, drift, impact, matrix, plan_release, skew_after_release, version_skew,
};
use super::*;

fn name(s: &str) -> ServiceName {
    ServiceName::parse(s).expect("valid name")
}

fn spec(n: &str, tier: u32, pii: bool, bu: &str) -> ServiceSpec {
    ServiceSpec {
        name: name(n),
        owner_team: "team-a".into(),
        business_unit: bu.into(),
        tier: Tier::new(tier).expect("tier"),
        handles_personal_data: pii,
        classification: DataClassification::Internal,
        runtime: RuntimeKind::Microservice,
    }
}

fn dep(c: &str, p: &str, kind: EdgeKind) -> Dependency {
    Dependency {
        consumer: name(c),
        provider: name(p),
        kind,
        data_flows: BTreeSet::new(),
    }
}

fn apply(mut c: Catalog, cmd: Command) -> Catalog {
    for e in c.changes(cmd).expect("command accepted") {
        c.apply(&e);
    }
    c
}

/// checkout -> payments -> ledger(db); web -> checkout; fraud <-> payments (sync cycle).
fn shop() -> Catalog {
    let mut c = Catalog::default();
    for s in [
        spec("web", 2, false, "retail"),
        spec("checkout", 1, true, "retail"),
        spec("payments", 1, true, "finance"),
        spec("ledger", 1, false, "finance"),
        spec("fraud", 2, true, "risk"),
        spec("reports", 4, false, "finance"),
    ] {
        c = apply(c, Command::RegisterService(s));
    }
    for d in [
        dep("web", "checkout", EdgeKind::SyncApi),
        dep("checkout", "payments", EdgeKind::SyncApi),
        dep("payments", "ledger", EdgeKind::Database),
        dep("payments", "fraud", EdgeKind::SyncApi),
        dep("fraud", "payments", EdgeKind::SyncApi),
        dep("reports", "ledger", EdgeKind::AsyncMessage),
    ] {
        c = apply(c, Command::DeclareDependency(d));
    }
    c
}

fn deploy(c: Catalog, env: &str, s: &str, v: &str, at: i64) -> Catalog {
    let at = Timestamp(at);
    apply(
        c,
        Command::RecordDeployment(Deployment {
            environment: env.into(),
            service: name(s),
            version: semver::Version::parse(v).expect("semver"),
            at,
        }),
    )
}

mod catalog;
mod graph;
mod runtime;
mod scenarios;
