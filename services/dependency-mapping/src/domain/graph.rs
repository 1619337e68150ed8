//! Graph queries over the catalog: impact analysis (reverse transitive closure), co-deployment
//! groups (cycles of synchronous coupling plus pins) and release plans in waves.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::{Catalog, DomainError, EdgeKind, Result, ServiceName, Tier};

/// One service a change can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactEntry {
    pub service: ServiceName,
    /// Hops from the changed service (1 = direct consumer).
    pub distance: u32,
    pub tier: Tier,
    pub business_unit: String,
    pub handles_personal_data: bool,
    /// Kinds of the edges through which it depends on the services reached before it.
    pub edge_kinds: BTreeSet<EdgeKind>,
    /// Higher is riskier: criticality, personal data and synchronous coupling raise it,
    /// distance lowers it.
    pub risk: u32,
}

fn risk(tier: Tier, pii: bool, kinds: &BTreeSet<EdgeKind>, distance: u32) -> u32 {
    let base = tier.weight() * 100
        + if pii { 60 } else { 0 }
        + if kinds.contains(&EdgeKind::SyncApi) {
            30
        } else {
            0
        };
    base.saturating_sub(distance.saturating_sub(1) * 40)
}

/// Every service that depends on `changed`, directly or transitively, ranked by risk (then
/// distance, then name).
pub fn impact(catalog: &Catalog, changed: &ServiceName) -> Result<Vec<ImpactEntry>> {
    if !catalog.services.contains_key(changed) {
        return Err(DomainError::UnknownService(changed.clone()));
    }
    let mut dist: HashMap<&ServiceName, u32> = HashMap::new();
    let mut kinds: HashMap<&ServiceName, BTreeSet<EdgeKind>> = HashMap::new();
    dist.insert(changed, 0);
    let mut queue = VecDeque::from([changed]);
    while let Some(provider) = queue.pop_front() {
        let d = dist[provider];
        for consumer in catalog.consumers_of(provider) {
            let kind = catalog
                .dependencies
                .get(&(consumer.clone(), provider.clone()))
                .map(|dep| dep.kind);
            match dist.get(consumer) {
                None => {
                    dist.insert(consumer, d + 1);
                    kinds.entry(consumer).or_default().extend(kind);
                    queue.push_back(consumer);
                }
                Some(&existing) if existing == d + 1 => {
                    kinds.entry(consumer).or_default().extend(kind);
                }
                Some(_) => {}
            }
        }
    }
    let mut out: Vec<ImpactEntry> = dist
        .into_iter()
        .filter(|(s, _)| *s != changed)
        .filter_map(|(s, distance)| {
            let spec = catalog.services.get(s)?;
            let edge_kinds = kinds.remove(s).unwrap_or_default();
            Some(ImpactEntry {
                service: s.clone(),
                distance,
                tier: spec.tier,
                business_unit: spec.business_unit.clone(),
                handles_personal_data: spec.handles_personal_data,
                risk: risk(spec.tier, spec.handles_personal_data, &edge_kinds, distance),
                edge_kinds,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.risk
            .cmp(&a.risk)
            .then(a.distance.cmp(&b.distance))
            .then(a.service.cmp(&b.service))
    });
    Ok(out)
}

/// Strongly connected components (iterative Tarjan) of the graph `nodes` x `edges`.
fn components<'a>(
    nodes: &[&'a ServiceName],
    edges: impl Fn(&'a ServiceName) -> Vec<&'a ServiceName>,
) -> Vec<Vec<&'a ServiceName>> {
    let index_of: HashMap<&ServiceName, usize> =
        nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let adj: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            edges(n)
                .into_iter()
                .filter_map(|m| index_of.get(m).copied())
                .collect()
        })
        .collect();
    let n = nodes.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let mut stack = Vec::new();
    let mut next = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = adj[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(nodes[w]);
                    if w == v {
                        break;
                    }
                }
                out.push(comp);
            }
        }
    }
    out
}

/// Services that must move together, each with why it is in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoDeploymentGroup {
    pub name: String,
    /// Members and the reasons for each membership.
    pub members: BTreeMap<ServiceName, Vec<String>>,
}

/// Co-deployment groups: cycles of synchronous coupling (each cycle's services cannot be
/// deployed one at a time without breaking a caller) and explicit pins, merged where they
/// overlap.
pub fn co_deployment_groups(catalog: &Catalog) -> Vec<CoDeploymentGroup> {
    let nodes: Vec<&ServiceName> = catalog.services.keys().collect();
    let mut reasons: BTreeMap<ServiceName, Vec<String>> = BTreeMap::new();
    let mut parent: HashMap<ServiceName, ServiceName> = HashMap::new();
    fn find(parent: &mut HashMap<ServiceName, ServiceName>, s: &ServiceName) -> ServiceName {
        let mut root = s.clone();
        while let Some(p) = parent.get(&root).cloned() {
            if p == root {
                break;
            }
            root = p;
        }
        // Path compression: point everything on the way at the root.
        let mut at = s.clone();
        while at != root {
            match parent.insert(at.clone(), root.clone()) {
                Some(next) => at = next,
                None => break,
            }
        }
        root
    }
    let union =
        |parent: &mut HashMap<ServiceName, ServiceName>, a: &ServiceName, b: &ServiceName| {
            let (ra, rb) = (find(parent, a), find(parent, b));
            if ra != rb {
                let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
                parent.insert(hi, lo);
            }
        };
    for comp in components(&nodes, |s| {
        catalog
            .providers_of(s)
            .filter(|d| d.kind == EdgeKind::SyncApi)
            .map(|d| &d.provider)
            .collect()
    }) {
        if comp.len() < 2 {
            continue;
        }
        let mut names: Vec<&ServiceName> = comp.clone();
        names.sort();
        // Name a few partners; a large cycle is summarised, not listed in every reason.
        const LISTED: usize = 5;
        for s in &comp {
            let others: Vec<&str> = names
                .iter()
                .filter(|o| *o != s)
                .take(LISTED)
                .map(|o| o.as_str())
                .collect();
            let more = (comp.len() - 1).saturating_sub(others.len());
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            reasons.entry((*s).clone()).or_default().push(format!(
                "synchronous dependency cycle with {}{tail}",
                others.join(", ")
            ));
            union(&mut parent, s, comp[0]);
        }
    }
    for pin in catalog.pins.values() {
        for s in &pin.services {
            reasons
                .entry(s.clone())
                .or_default()
                .push(format!("pinned in {}: {}", pin.group, pin.reason));
            union(&mut parent, s, &pin.services[0]);
        }
    }
    let mut groups: BTreeMap<ServiceName, BTreeMap<ServiceName, Vec<String>>> = BTreeMap::new();
    for (s, r) in reasons {
        let root = find(&mut parent, &s);
        groups.entry(root).or_default().insert(s, r);
    }
    groups
        .into_iter()
        .map(|(root, members)| {
            let pinned: BTreeSet<&str> = catalog
                .pins
                .values()
                .filter(|p| p.services.iter().any(|s| members.contains_key(s)))
                .map(|p| p.group.as_str())
                .collect();
            let name = if pinned.is_empty() {
                format!("sync-cycle-{root}")
            } else {
                pinned.into_iter().collect::<Vec<_>>().join("+")
            };
            CoDeploymentGroup { name, members }
        })
        .collect()
}

/// One service in a release plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedService {
    pub service: ServiceName,
    /// The version to deploy, or None for a co-deployment partner whose version the release
    /// did not name (it is redeployed as it runs now).
    pub version: Option<String>,
    /// The co-deployment group it moves with, if any.
    pub group: Option<String>,
}

/// A release plan: waves in order (every provider in an earlier wave than its consumers, each
/// co-deployment group in one wave) and the services the release can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasePlan {
    pub waves: Vec<Vec<PlannedService>>,
    pub impact: Vec<ImpactEntry>,
}

/// Plans a release of `items` (service, version).
pub fn plan_release(catalog: &Catalog, items: &[(ServiceName, String)]) -> Result<ReleasePlan> {
    if items.is_empty() {
        return Err(DomainError::Invalid {
            field: "items",
            reason: "a release plan needs at least one service".into(),
        });
    }
    let mut versions: BTreeMap<ServiceName, Option<String>> = BTreeMap::new();
    for (s, v) in items {
        if !catalog.services.contains_key(s) {
            return Err(DomainError::UnknownService(s.clone()));
        }
        if versions.insert(s.clone(), Some(v.clone())).is_some() {
            return Err(DomainError::Invalid {
                field: "items",
                reason: format!("{s} is named twice"),
            });
        }
    }
    let groups = co_deployment_groups(catalog);
    let mut group_of: HashMap<ServiceName, usize> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        for m in g.members.keys() {
            group_of.insert(m.clone(), i);
        }
    }
    // Co-deployment partners come along.
    let named: Vec<ServiceName> = versions.keys().cloned().collect();
    for s in &named {
        if let Some(&g) = group_of.get(s) {
            for m in groups[g].members.keys() {
                versions.entry(m.clone()).or_insert(None);
            }
        }
    }
    // Units: a co-deployment group, or a service alone; units in a dependency cycle merge.
    let planned: Vec<&ServiceName> = versions.keys().collect();
    let in_plan: BTreeSet<&ServiceName> = planned.iter().copied().collect();
    // A planned service depends on the planned services it reaches through any chain of
    // services outside the plan (checkout -> payments -> ledger orders ledger before checkout
    // even when payments is not released).
    let reach: HashMap<&ServiceName, Vec<&ServiceName>> = planned
        .iter()
        .map(|&s| {
            let mut seen: BTreeSet<&ServiceName> = BTreeSet::from([s]);
            let mut queue: VecDeque<&ServiceName> = VecDeque::from([s]);
            let mut found = Vec::new();
            while let Some(at) = queue.pop_front() {
                for d in catalog.providers_of(at) {
                    let p = &d.provider;
                    if !seen.insert(p) {
                        continue;
                    }
                    if in_plan.contains(p) {
                        found.push(p);
                    } else {
                        queue.push_back(p);
                    }
                }
            }
            (s, found)
        })
        .collect();
    let comps = components(&planned, |s| {
        let mut out: Vec<&ServiceName> = reach.get(s).cloned().unwrap_or_default();
        // Members of one group are one unit: link them both ways.
        if let Some(&g) = group_of.get(s) {
            out.extend(groups[g].members.keys().filter(|m| in_plan.contains(m)));
        }
        out
    });
    let mut comp_of: HashMap<&ServiceName, usize> = HashMap::new();
    for (i, c) in comps.iter().enumerate() {
        for s in c {
            comp_of.insert(s, i);
        }
    }
    // Tarjan emits components in reverse topological order of the "depends on" graph: providers
    // first. A unit's wave is one more than the latest wave of the units it depends on.
    let mut wave = vec![0usize; comps.len()];
    for (i, c) in comps.iter().enumerate() {
        let mut w = 0;
        for s in c {
            for p in reach.get(s).into_iter().flatten() {
                if let Some(&j) = comp_of.get(p)
                    && j != i
                {
                    w = w.max(wave[j] + 1);
                }
            }
        }
        wave[i] = w;
    }
    let mut waves: Vec<Vec<PlannedService>> =
        vec![Vec::new(); wave.iter().copied().max().map_or(0, |m| m + 1)];
    for (s, v) in &versions {
        let w = comp_of.get(s).map_or(0, |&c| wave[c]);
        waves[w].push(PlannedService {
            service: s.clone(),
            version: v.clone(),
            group: group_of.get(s).map(|&g| groups[g].name.clone()),
        });
    }
    let mut reach: BTreeMap<ServiceName, ImpactEntry> = BTreeMap::new();
    for s in &named {
        for e in impact(catalog, s)? {
            if versions.contains_key(&e.service) {
                continue;
            }
            match reach.get(&e.service) {
                Some(prev) if prev.risk >= e.risk => {}
                _ => {
                    reach.insert(e.service.clone(), e);
                }
            }
        }
    }
    let mut impact_set: Vec<ImpactEntry> = reach.into_values().collect();
    impact_set.sort_by(|a, b| {
        b.risk
            .cmp(&a.risk)
            .then(a.distance.cmp(&b.distance))
            .then(a.service.cmp(&b.service))
    });
    Ok(ReleasePlan {
        waves,
        impact: impact_set,
    })
}

/// Declared edges never observed at runtime, and observed edges never declared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Drift {
    pub declared_not_observed: Vec<(ServiceName, ServiceName, EdgeKind)>,
    pub observed_not_declared: Vec<(ServiceName, ServiceName, super::ObservedEdge)>,
}

/// Compares declarations with observations.
pub fn drift(catalog: &Catalog) -> Drift {
    Drift {
        declared_not_observed: catalog
            .dependencies
            .iter()
            .filter(|(k, _)| !catalog.observed.contains_key(*k))
            .map(|((c, p), d)| (c.clone(), p.clone(), d.kind))
            .collect(),
        observed_not_declared: catalog
            .observed
            .iter()
            .filter(|(k, _)| !catalog.dependencies.contains_key(*k))
            .map(|((c, p), o)| (c.clone(), p.clone(), *o))
            .collect(),
    }
}

/// Most services a dense matrix may have (ask for a business unit or a set of services).
pub const MAX_MATRIX_SERVICES: usize = 500;

/// The dependency matrix of `services` (all when empty): the services, in order, and every
/// declared edge between two of them.
pub fn matrix<'a>(
    catalog: &'a Catalog,
    services: &[ServiceName],
    business_unit: &str,
) -> Result<(Vec<ServiceName>, Vec<&'a super::Dependency>)> {
    for s in services {
        if !catalog.services.contains_key(s) {
            return Err(DomainError::UnknownService(s.clone()));
        }
    }
    let chosen: BTreeSet<ServiceName> = if services.is_empty() {
        catalog
            .services
            .values()
            .filter(|s| business_unit.is_empty() || s.business_unit == business_unit)
            .map(|s| s.name.clone())
            .collect()
    } else {
        services.iter().cloned().collect()
    };
    if chosen.len() > MAX_MATRIX_SERVICES {
        return Err(DomainError::Invalid {
            field: "services",
            reason: format!(
                "{} services make a matrix too large to read; name at most {MAX_MATRIX_SERVICES} services or a business unit",
                chosen.len()
            ),
        });
    }
    let cells = chosen
        .iter()
        .flat_map(|c| {
            catalog
                .providers_of(c)
                .filter(|d| chosen.contains(&d.provider))
        })
        .collect();
    Ok((chosen.into_iter().collect(), cells))
}
