//! What ran in an environment at an instant, from orchestration's ledgered
//! `DeploymentFinished` events: each says what version of a service runs after it (the
//! previous one after a rollback); the release a version came with is the one whose succeeded
//! deployment put it there.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flotilla_proto::orchestration::v1 as orch;
use prost::Message;

use crate::domain::{Ledgered, Timestamp};

const DEPLOYMENT_FINISHED: &str = "flotilla.orchestration.v1.DeploymentFinished";

/// The releases whose versions ran in `environment` at `at`, by name, and what ran: service
/// -> (version, release).
pub fn running_at(
    events: &[Ledgered],
    environment: &str,
    at: Timestamp,
) -> (Vec<String>, BTreeMap<String, (String, String)>) {
    // (service, version) -> the release whose succeeded deployment put it there.
    let mut came_with: HashMap<(String, String), String> = HashMap::new();
    let mut running: BTreeMap<String, (String, String)> = BTreeMap::new();
    for l in events {
        if l.event.event_type != DEPLOYMENT_FINISHED || l.event.recorded_at > at {
            continue;
        }
        let Ok(d) = orch::DeploymentFinished::decode(l.event.payload.as_slice()) else {
            continue;
        };
        if d.environment != environment {
            continue;
        }
        let key = (d.service.clone(), d.version.clone());
        if d.outcome == orch::DeploymentOutcome::Succeeded as i32 {
            // Orchestration's release_id carries the release's name.
            came_with.insert(key.clone(), d.release_id.clone());
        }
        match came_with.get(&key) {
            Some(release) if !d.version.is_empty() => {
                running.insert(d.service, (d.version, release.clone()));
            }
            _ => {
                running.remove(&d.service);
            }
        }
    }
    let releases: BTreeSet<String> = running.values().map(|(_, r)| r.clone()).collect();
    (releases.into_iter().collect(), running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::event_at;

    fn finished(
        n: u64,
        service: &str,
        version: &str,
        release: &str,
        outcome: orch::DeploymentOutcome,
    ) -> Ledgered {
        let mut e = event_at("orchestration", n, flotilla_core::chain::Hash::GENESIS);
        e.event_type = DEPLOYMENT_FINISHED.into();
        e.recorded_at = Timestamp(n as i64 * 1_000_000);
        e.payload = orch::DeploymentFinished {
            release_id: release.into(),
            environment: "prod".into(),
            service: service.into(),
            version: version.into(),
            outcome: outcome as i32,
            ..Default::default()
        }
        .encode_to_vec();
        Ledgered {
            index: n,
            event: e,
            content_matches: true,
            at: Timestamp(0),
        }
    }

    #[test]
    fn a_rollback_puts_back_the_release_that_ran_before() {
        use orch::DeploymentOutcome::*;
        let events = vec![
            finished(1, "cards-api", "1.0.0", "cards-1.0.0", Succeeded),
            finished(2, "payments-api", "2.0.0", "payments-2.0.0", Succeeded),
            finished(3, "cards-api", "2.0.0", "cards-2.0.0", Succeeded),
            // The watch window breached: rolled back to 1.0.0.
            finished(4, "cards-api", "1.0.0", "cards-2.0.0", RolledBack),
        ];
        let (releases, running) = running_at(&events, "prod", Timestamp(3_500_000));
        assert_eq!(releases, ["cards-2.0.0", "payments-2.0.0"]);
        assert_eq!(running["cards-api"].0, "2.0.0");
        let (releases, running) = running_at(&events, "prod", Timestamp(10_000_000));
        assert_eq!(releases, ["cards-1.0.0", "payments-2.0.0"]);
        assert_eq!(running["cards-api"], ("1.0.0".into(), "cards-1.0.0".into()));
        let (releases, _) = running_at(&events, "staging", Timestamp(10_000_000));
        assert!(releases.is_empty());
    }
}
