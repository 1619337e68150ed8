//! Correlation: given an anomaly (a service in an environment at a time), the releases deployed
//! in the window before it to the service itself or to what it depends on (the catalog's
//! dependency graph, followed from consumer to provider), ranked by distance in the graph and
//! then by how recently they landed, each with why it is suspected.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{DeploymentNote, Outcome, Result, Timestamp, invalid};

/// Most hops followed from the anomalous service.
pub const MAX_DEPTH: usize = 5;

#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    pub service: String,
    pub environment: String,
    pub at: Timestamp,
    /// How far back deployments are suspects.
    pub window_minutes: u32,
    pub max_depth: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Suspect {
    pub release: String,
    pub deployment: String,
    pub service: String,
    pub version: String,
    pub deployed_at: Timestamp,
    /// Hops from the anomalous service (0: the service itself).
    pub distance: usize,
    /// The anomalous service, then each provider on the way to the deployed one.
    pub path: Vec<String>,
    pub why: String,
}

/// The suspects, most suspected first.
pub fn suspects(
    deployments: &[DeploymentNote],
    depends_on: &BTreeMap<String, BTreeSet<String>>,
    a: &Anomaly,
) -> Result<Vec<Suspect>> {
    if a.window_minutes == 0 || a.window_minutes > 43_200 {
        return Err(invalid("window_minutes", "is not 1 minute to 30 days"));
    }
    if a.max_depth > MAX_DEPTH {
        return Err(invalid("max_depth", format!("at most {MAX_DEPTH}")));
    }
    // Breadth first from the service to what it depends on: each service's shortest path.
    let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = VecDeque::from([vec![a.service.clone()]]);
    while let Some(path) = queue.pop_front() {
        let Some(last) = path.last().cloned() else {
            continue;
        };
        if paths.contains_key(&last) {
            continue;
        }
        if path.len() <= a.max_depth {
            for next in depends_on.get(&last).into_iter().flatten() {
                if !paths.contains_key(next) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    queue.push_back(p);
                }
            }
        }
        paths.insert(last, path);
    }
    let since = Timestamp(
        a.at.0
            .saturating_sub(i64::from(a.window_minutes) * 60_000_000),
    );
    let mut out: Vec<Suspect> = deployments
        .iter()
        .filter(|d| d.outcome == Outcome::Succeeded && d.environment == a.environment)
        .filter(|d| d.finished_at >= since && d.finished_at <= a.at)
        .filter_map(|d| {
            let path = paths.get(&d.service)?;
            let minutes = a.at.0.saturating_sub(d.finished_at.0) / 60_000_000;
            let why = if path.len() == 1 {
                format!(
                    "{} {} of release {} was deployed to {} itself {minutes} min before",
                    d.service, d.version, d.release, a.service
                )
            } else {
                format!(
                    "{} depends on {} ({}), and {} {} of release {} was deployed {minutes} min before",
                    a.service,
                    d.service,
                    path.join(" -> "),
                    d.service,
                    d.version,
                    d.release
                )
            };
            Some(Suspect {
                release: d.release.clone(),
                deployment: d.deployment.clone(),
                service: d.service.clone(),
                version: d.version.clone(),
                deployed_at: d.finished_at,
                distance: path.len() - 1,
                path: path.clone(),
                why,
            })
        })
        .collect();
    out.sort_by(|x, y| {
        x.distance
            .cmp(&y.distance)
            .then(y.deployed_at.cmp(&x.deployed_at))
            .then(x.service.cmp(&y.service))
    });
    Ok(out)
}
