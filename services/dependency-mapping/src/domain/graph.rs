//! Graph queries over the catalog: impact analysis (reverse transitive closure), co-deployment
//! groups (cycles of synchronous coupling plus pins) and release plans in waves.
//!
//! Queries run on a [`Graph`]: the catalog indexed by integers (adjacency lists both ways), built
//! once per catalog version and shared by queries until the catalog changes.

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

const KINDS: [EdgeKind; 4] = [
    EdgeKind::SyncApi,
    EdgeKind::AsyncMessage,
    EdgeKind::Database,
    EdgeKind::SharedInfrastructure,
];

fn bit(k: EdgeKind) -> u8 {
    match k {
        EdgeKind::SyncApi => 1,
        EdgeKind::AsyncMessage => 2,
        EdgeKind::Database => 4,
        EdgeKind::SharedInfrastructure => 8,
    }
}

fn risk(tier: Tier, pii: bool, sync: bool, distance: u32) -> u32 {
    let base = tier.weight() * 100 + if pii { 60 } else { 0 } + if sync { 30 } else { 0 };
    base.saturating_sub(distance.saturating_sub(1) * 40)
}

/// Services that must move together, each with why it is in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoDeploymentGroup {
    pub name: String,
    /// Members and the reasons for each membership.
    pub members: BTreeMap<ServiceName, Vec<String>>,
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

/// The catalog indexed for graph queries.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    names: Vec<ServiceName>,
    ids: HashMap<ServiceName, u32>,
    tier: Vec<Tier>,
    pii: Vec<bool>,
    business_unit: Vec<String>,
    /// consumer -> (provider, kind)
    providers: Vec<Vec<(u32, EdgeKind)>>,
    /// provider -> (consumer, kind)
    consumers: Vec<Vec<(u32, EdgeKind)>>,
    /// (group, members, reason)
    pins: Vec<(String, Vec<u32>, String)>,
    /// Computed on first use, kept for the life of this catalog version.
    groups: std::sync::OnceLock<Vec<CoDeploymentGroup>>,
    layering: std::sync::OnceLock<Layering>,
}

/// Every dependency (pins both ways) and its strongly connected components, providers first:
/// what release planning needs that does not depend on the release.
#[derive(Debug, Clone, Default)]
struct Layering {
    adj: Vec<Vec<u32>>,
    comps: Vec<Vec<u32>>,
    comp_of: Vec<usize>,
}

/// Strongly connected components (iterative Tarjan) of nodes `0..n` with `adj`. Components come
/// out in reverse topological order: a component after every component it reaches.
fn components(n: usize, adj: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let (mut index, mut low, mut on_stack) = (vec![u32::MAX; n], vec![0u32; n], vec![false; n]);
    let mut stack: Vec<u32> = Vec::new();
    let mut next = 0u32;
    let mut out = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != u32::MAX {
            continue;
        }
        let mut work: Vec<(u32, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            let vi = v as usize;
            if *child == 0 && index[vi] == u32::MAX {
                index[vi] = next;
                low[vi] = next;
                next += 1;
                stack.push(v);
                on_stack[vi] = true;
            }
            if let Some(&w) = adj[vi].get(*child) {
                *child += 1;
                let wi = w as usize;
                if index[wi] == u32::MAX {
                    work.push((w, 0));
                } else if on_stack[wi] {
                    low[vi] = low[vi].min(index[wi]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent as usize] = low[parent as usize].min(low[vi]);
            }
            if low[vi] == index[vi] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    comp.push(w);
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

fn find(parent: &mut [u32], x: u32) -> u32 {
    let mut root = x;
    while parent[root as usize] != root {
        root = parent[root as usize];
    }
    let mut at = x;
    while parent[at as usize] != root {
        let next = parent[at as usize];
        parent[at as usize] = root;
        at = next;
    }
    root
}

impl Graph {
    /// Indexes a catalog.
    pub fn build(catalog: &Catalog) -> Self {
        let mut g = Graph::default();
        for (i, (name, spec)) in catalog.services.iter().enumerate() {
            g.names.push(name.clone());
            g.ids.insert(name.clone(), i as u32);
            g.tier.push(spec.tier);
            g.pii.push(spec.handles_personal_data);
            g.business_unit.push(spec.business_unit.clone());
        }
        g.providers = vec![Vec::new(); g.names.len()];
        g.consumers = vec![Vec::new(); g.names.len()];
        for ((c, p), d) in &catalog.dependencies {
            if let (Some(&ci), Some(&pi)) = (g.ids.get(c), g.ids.get(p)) {
                g.providers[ci as usize].push((pi, d.kind));
                g.consumers[pi as usize].push((ci, d.kind));
            }
        }
        for pin in catalog.pins.values() {
            let members = pin
                .services
                .iter()
                .filter_map(|s| g.ids.get(s).copied())
                .collect();
            g.pins
                .push((pin.group.clone(), members, pin.reason.clone()));
        }
        g
    }

    fn id(&self, s: &ServiceName) -> Result<u32> {
        self.ids
            .get(s)
            .copied()
            .ok_or_else(|| DomainError::UnknownService(s.clone()))
    }

    /// Breadth-first over consumers from `sources`: distance (u32::MAX = unreached) and the
    /// kinds of the edges that reached each node at its distance.
    fn reverse_closure(&self, sources: &[u32]) -> (Vec<u32>, Vec<u8>) {
        let n = self.names.len();
        let (mut dist, mut kinds) = (vec![u32::MAX; n], vec![0u8; n]);
        let mut queue = VecDeque::with_capacity(n.min(4096));
        for &s in sources {
            dist[s as usize] = 0;
            queue.push_back(s);
        }
        while let Some(p) = queue.pop_front() {
            let d = dist[p as usize] + 1;
            for &(c, kind) in &self.consumers[p as usize] {
                let ci = c as usize;
                if dist[ci] == u32::MAX {
                    dist[ci] = d;
                    queue.push_back(c);
                }
                if dist[ci] == d {
                    kinds[ci] |= bit(kind);
                }
            }
        }
        (dist, kinds)
    }

    fn entries(&self, dist: &[u32], kinds: &[u8], skip: impl Fn(u32) -> bool) -> Vec<ImpactEntry> {
        // Rank on integers first (ids follow name order), then build the entries in that order.
        let mut ranked: Vec<(u32, u32, u32)> = dist
            .iter()
            .enumerate()
            .filter(|&(i, &d)| d != u32::MAX && d > 0 && !skip(i as u32))
            .map(|(i, &d)| {
                (
                    risk(
                        self.tier[i],
                        self.pii[i],
                        kinds[i] & bit(EdgeKind::SyncApi) != 0,
                        d,
                    ),
                    d,
                    i as u32,
                )
            })
            .collect();
        ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        ranked
            .into_iter()
            .map(|(risk, distance, id)| {
                let i = id as usize;
                ImpactEntry {
                    service: self.names[i].clone(),
                    distance,
                    tier: self.tier[i],
                    business_unit: self.business_unit[i].clone(),
                    handles_personal_data: self.pii[i],
                    risk,
                    edge_kinds: KINDS
                        .iter()
                        .copied()
                        .filter(|k| kinds[i] & bit(*k) != 0)
                        .collect(),
                }
            })
            .collect()
    }

    /// Every service that depends on `changed`, directly or transitively, ranked by risk (then
    /// distance, then name).
    pub fn impact(&self, changed: &ServiceName) -> Result<Vec<ImpactEntry>> {
        let id = self.id(changed)?;
        let (dist, kinds) = self.reverse_closure(&[id]);
        Ok(self.entries(&dist, &kinds, |_| false))
    }

    /// Co-deployment groups: cycles of synchronous coupling (their services cannot be deployed
    /// one at a time without breaking a caller) and explicit pins, merged where they overlap.
    pub fn co_deployment_groups(&self) -> Vec<CoDeploymentGroup> {
        self.groups.get_or_init(|| self.compute_groups()).clone()
    }

    fn compute_groups(&self) -> Vec<CoDeploymentGroup> {
        let n = self.names.len();
        let sync: Vec<Vec<u32>> = self
            .providers
            .iter()
            .map(|ps| {
                ps.iter()
                    .filter(|(_, k)| *k == EdgeKind::SyncApi)
                    .map(|(p, _)| *p)
                    .collect()
            })
            .collect();
        let mut parent: Vec<u32> = (0..n as u32).collect();
        let mut reasons: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let union = |parent: &mut Vec<u32>, a: u32, b: u32| {
            let (ra, rb) = (find(parent, a), find(parent, b));
            if ra != rb {
                parent[ra.max(rb) as usize] = ra.min(rb);
            }
        };
        const LISTED: usize = 5;
        for comp in components(n, &sync) {
            if comp.len() < 2 {
                continue;
            }
            let mut sorted: Vec<&ServiceName> =
                comp.iter().map(|&i| &self.names[i as usize]).collect();
            sorted.sort();
            for &s in &comp {
                let me = &self.names[s as usize];
                let others: Vec<&str> = sorted
                    .iter()
                    .filter(|o| **o != me)
                    .take(LISTED)
                    .map(|o| o.as_str())
                    .collect();
                let more = (comp.len() - 1).saturating_sub(others.len());
                let tail = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                reasons.entry(s).or_default().push(format!(
                    "synchronous dependency cycle with {}{tail}",
                    others.join(", ")
                ));
                union(&mut parent, s, comp[0]);
            }
        }
        for (group, members, reason) in &self.pins {
            for &m in members {
                reasons
                    .entry(m)
                    .or_default()
                    .push(format!("pinned in {group}: {reason}"));
                union(&mut parent, m, members[0]);
            }
        }
        // A cycle can also close through a pin (a -> b, pin b + c, c -> a): once the pinned
        // services move together, their callers in such a cycle must move with them.
        let mut with_pins = sync.clone();
        self.link_pins(&mut with_pins);
        for comp in components(n, &with_pins) {
            if comp.len() < 2 {
                continue;
            }
            let pinned: Vec<&str> = self
                .pins
                .iter()
                .filter(|(_, ms, _)| ms.iter().any(|m| comp.contains(m)))
                .map(|(g, _, _)| g.as_str())
                .collect();
            for &s in &comp {
                reasons.entry(s).or_insert_with(|| {
                    vec![format!(
                        "synchronous dependency cycle through the services pinned in {}",
                        pinned.join(", ")
                    )]
                });
                union(&mut parent, s, comp[0]);
            }
        }
        let mut groups: BTreeMap<u32, BTreeMap<ServiceName, Vec<String>>> = BTreeMap::new();
        let mut roots: BTreeMap<u32, u32> = BTreeMap::new();
        for (s, r) in reasons {
            let root = find(&mut parent, s);
            roots.insert(s, root);
            groups
                .entry(root)
                .or_default()
                .insert(self.names[s as usize].clone(), r);
        }
        let mut out: Vec<CoDeploymentGroup> = groups
            .into_iter()
            .map(|(root, members)| {
                let pinned: BTreeSet<&str> = self
                    .pins
                    .iter()
                    .filter(|(_, ms, _)| ms.iter().any(|m| roots.get(m) == Some(&root)))
                    .map(|(g, _, _)| g.as_str())
                    .collect();
                let first = members
                    .keys()
                    .next()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let name = if pinned.is_empty() {
                    format!("sync-cycle-{first}")
                } else {
                    pinned.into_iter().collect::<Vec<_>>().join("+")
                };
                CoDeploymentGroup { name, members }
            })
            .collect();
        out.sort_by(|a, b| a.members.keys().next().cmp(&b.members.keys().next()));
        out
    }

    /// Links each pin's members through its first member, both ways: one component, with edges
    /// linear in the pin's size.
    fn link_pins(&self, adj: &mut [Vec<u32>]) {
        for (_, members, _) in &self.pins {
            if let Some((&first, rest)) = members.split_first() {
                for &m in rest {
                    adj[first as usize].push(m);
                    adj[m as usize].push(first);
                }
            }
        }
    }

    fn compute_layering(&self) -> Layering {
        let mut adj: Vec<Vec<u32>> = self
            .providers
            .iter()
            .map(|ps| ps.iter().map(|(p, _)| *p).collect())
            .collect();
        self.link_pins(&mut adj);
        let comps = components(self.names.len(), &adj);
        let mut comp_of = vec![0usize; self.names.len()];
        for (ci, c) in comps.iter().enumerate() {
            for &v in c {
                comp_of[v as usize] = ci;
            }
        }
        Layering {
            adj,
            comps,
            comp_of,
        }
    }

    /// Plans a release of `items` (service, version).
    pub fn plan_release(&self, items: &[(ServiceName, String)]) -> Result<ReleasePlan> {
        if items.is_empty() {
            return Err(DomainError::Invalid {
                field: "items",
                reason: "a release plan needs at least one service".into(),
            });
        }
        let mut version: BTreeMap<u32, Option<String>> = BTreeMap::new();
        for (s, v) in items {
            let id = self.id(s)?;
            if version.insert(id, Some(v.clone())).is_some() {
                return Err(DomainError::Invalid {
                    field: "items",
                    reason: format!("{s} is named twice"),
                });
            }
        }
        let named: Vec<u32> = version.keys().copied().collect();
        let groups = self.groups.get_or_init(|| self.compute_groups());
        let mut group_of: HashMap<u32, usize> = HashMap::new();
        for (gi, g) in groups.iter().enumerate() {
            for m in g.members.keys() {
                if let Some(&id) = self.ids.get(m) {
                    group_of.insert(id, gi);
                }
            }
        }
        // Co-deployment partners come along.
        for s in &named {
            if let Some(&g) = group_of.get(s) {
                for m in groups[g].members.keys().filter_map(|m| self.ids.get(m)) {
                    version.entry(*m).or_insert(None);
                }
            }
        }
        let planned: Vec<u32> = version.keys().copied().collect();
        let is_planned: Vec<bool> = {
            let mut v = vec![false; self.names.len()];
            for &s in &planned {
                v[s as usize] = true;
            }
            v
        };
        // One pass over the whole graph, providers first: a planned service's wave is one after
        // the latest wave of any planned service it reaches, through services outside the plan
        // too (checkout -> payments -> ledger orders ledger before checkout even when payments
        // is not released). Pins link their members both ways so a group is one component.
        let Layering {
            adj,
            comps,
            comp_of,
        } = self.layering.get_or_init(|| self.compute_layering());
        // reach[c]: the latest wave of a planned service in or below component c (-1: none).
        let mut reach = vec![-1i64; comps.len()];
        let mut wave_of = vec![0i64; comps.len()];
        for (ci, c) in comps.iter().enumerate() {
            let mut below = -1i64;
            for &v in c {
                for &p in &adj[v as usize] {
                    let pc = comp_of[p as usize];
                    if pc != ci {
                        below = below.max(reach[pc]);
                    }
                }
            }
            if c.iter().any(|&v| is_planned[v as usize]) {
                wave_of[ci] = below + 1;
                reach[ci] = below + 1;
            } else {
                reach[ci] = below;
            }
        }
        let mut used: Vec<i64> = planned
            .iter()
            .map(|&s| wave_of[comp_of[s as usize]])
            .collect();
        used.sort_unstable();
        used.dedup();
        let mut waves: Vec<Vec<PlannedService>> = vec![Vec::new(); used.len()];
        for &s in &planned {
            let w = used
                .binary_search(&wave_of[comp_of[s as usize]])
                .unwrap_or(0);
            waves[w].push(PlannedService {
                service: self.names[s as usize].clone(),
                version: version.get(&s).cloned().flatten(),
                group: group_of.get(&s).map(|&g| groups[g].name.clone()),
            });
        }
        for w in &mut waves {
            w.sort_by(|a, b| a.service.cmp(&b.service));
        }
        // What the release can reach, from the nearest released service, outside the plan.
        let (dist, kinds) = self.reverse_closure(&named);
        let impact = self.entries(&dist, &kinds, |i| is_planned[i as usize]);
        Ok(ReleasePlan { waves, impact })
    }
}

/// Every service that depends on `changed` (indexes the catalog first; services that answer
/// many queries keep a [`Graph`]).
pub fn impact(catalog: &Catalog, changed: &ServiceName) -> Result<Vec<ImpactEntry>> {
    Graph::build(catalog).impact(changed)
}

/// Co-deployment groups of the catalog (indexes it first).
pub fn co_deployment_groups(catalog: &Catalog) -> Vec<CoDeploymentGroup> {
    Graph::build(catalog).co_deployment_groups()
}

/// A release plan on the catalog (indexes it first).
pub fn plan_release(catalog: &Catalog, items: &[(ServiceName, String)]) -> Result<ReleasePlan> {
    Graph::build(catalog).plan_release(items)
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

/// A consumer running against a provider version outside the range it declared it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkewViolation {
    pub environment: String,
    pub consumer: ServiceName,
    pub consumer_version: semver::Version,
    pub provider: ServiceName,
    pub provider_version: semver::Version,
    pub requirement: semver::VersionReq,
}

fn violations_in(
    catalog: &Catalog,
    environment: &str,
    running: &BTreeMap<ServiceName, semver::Version>,
) -> Vec<SkewViolation> {
    catalog
        .requirements
        .iter()
        .filter_map(|((consumer, provider), req)| {
            let cv = running.get(consumer)?;
            let pv = running.get(provider)?;
            (!req.matches(pv)).then(|| SkewViolation {
                environment: environment.to_owned(),
                consumer: consumer.clone(),
                consumer_version: cv.clone(),
                provider: provider.clone(),
                provider_version: pv.clone(),
                requirement: req.clone(),
            })
        })
        .collect()
}

/// Every environment (or one) where deployed versions violate a declared range.
pub fn version_skew(catalog: &Catalog, environment: Option<&str>) -> Vec<SkewViolation> {
    catalog
        .deployments
        .keys()
        .filter(|e| environment.is_none_or(|want| want == e.as_str()))
        .flat_map(|e| violations_in(catalog, e, &catalog.footprint(e, None)))
        .collect()
}

/// What deploying `items` would break, in every environment that runs any of the catalog's
/// services: the violations with the release's versions in place that are not there today.
pub fn skew_after_release(
    catalog: &Catalog,
    items: &[(ServiceName, semver::Version)],
) -> Vec<SkewViolation> {
    let mut out = Vec::new();
    for env in catalog.deployments.keys() {
        let now = catalog.footprint(env, None);
        let before: BTreeSet<(ServiceName, ServiceName)> = violations_in(catalog, env, &now)
            .into_iter()
            .map(|v| (v.consumer, v.provider))
            .collect();
        let mut after = now;
        for (s, v) in items {
            after.insert(s.clone(), v.clone());
        }
        out.extend(
            violations_in(catalog, env, &after)
                .into_iter()
                .filter(|v| !before.contains(&(v.consumer.clone(), v.provider.clone()))),
        );
    }
    out
}
