//! Risk-validation's domain, given/when/then: assessments scored and explained, superseded
//! only when their facts change; FMEA with required actions; validations judged from evidence.

use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

mod assessment;
mod fmea;
mod validation;

pub(crate) const DAY: i64 = 86_400_000_000;
pub(crate) const T0: Timestamp = Timestamp(1_793_577_600_000_000);

pub(crate) fn day(n: i64) -> Timestamp {
    Timestamp(T0.0 + n * DAY)
}

pub(crate) fn item(service: &str, migrations: u32, schema_changes: u32) -> NotedItem {
    NotedItem {
        service: service.into(),
        version: "2.0.0".into(),
        migrations,
        schema_changes,
    }
}

pub(crate) fn release(name: &str, items: Vec<NotedItem>, emergency: bool) -> Command {
    NoteRelease {
        release: NotedRelease {
            id: format!("id-{name}"),
            name: name.into(),
            business_unit: "payments".into(),
            emergency,
            created_by: "rita".into(),
            items,
            created_at: day(0),
        },
    }
    .into()
}

pub(crate) fn catalog(service: &str, tier: u8, personal_data: bool) -> Command {
    NoteCatalogService {
        entry: CatalogEntry {
            service: service.into(),
            business_unit: "payments".into(),
            tier,
            personal_data,
        },
        seed: Uuid::from_u128(u128::from(tier) << 8 | 1),
        at: day(0),
    }
    .into()
}

pub(crate) fn path(envs: &[&str]) -> Command {
    NotePromotionPath {
        business_unit: "payments".into(),
        environments: envs.iter().map(|e| (*e).to_owned()).collect(),
        seed: Uuid::from_u128(2),
        at: day(0),
    }
    .into()
}

pub(crate) fn planned(name: &str, impact: &[&str], at: Timestamp) -> Command {
    AssessRelease {
        release_id: format!("id-{name}"),
        impact: impact.iter().map(|e| (*e).to_owned()).collect(),
        seed: Uuid::from_u128(at.0 as u128),
        at,
    }
    .into()
}

pub(crate) fn deployment(
    n: u32,
    release: &str,
    service: &str,
    env: &str,
    outcome: Outcome,
    at: Timestamp,
) -> Command {
    NoteDeployment {
        note: DeploymentNote {
            deployment: format!("d{n}"),
            release: release.into(),
            service: service.into(),
            environment: env.into(),
            outcome,
            finished_at: at,
        },
    }
    .into()
}

/// The catalog (ledger tier 1 with personal data, api tier 3), the path dev -> prod.
pub(crate) fn known() -> Scenario<RiskValidation> {
    Scenario::given_commands([
        catalog("ledger", 1, true),
        catalog("api", 3, false),
        path(&["dev", "prod"]),
    ])
}

/// The assessments a decision recorded.
pub(crate) fn assessed(events: &[Event]) -> Vec<&Assessment> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RiskAssessed(a) => Some(&**a),
            _ => None,
        })
        .collect()
}
