//! Every known role against every guarded operation of all six services, with the shipped
//! default policy: the expected answer for each pair comes from the operation's action group.

use flotilla_auth::{AccessContext, Authorizer, Identity, KNOWN_ROLES, operations};

/// Roles the default policy grants each action group (admins have every right).
fn granted(group: &str) -> &'static [&'static str] {
    match group {
        "read" => KNOWN_ROLES,
        "catalog-write" => &["admin", "release-manager", "service-owner", "developer"],
        "approval-request" => &["admin", "release-manager", "scheduler"],
        "approval-decision" => &[
            "admin",
            "developer",
            "service-owner",
            "security",
            "business",
            "cab",
            "release-manager",
        ],
        "cab-decision" => &["admin", "cab"],
        "policy-admin" => &["admin"],
        "window-admin" => &["admin", "release-manager", "compliance-officer"],
        "deviation-request" => &["admin", "release-manager", "developer", "service-owner"],
        "deviation-decision" => &["admin", "compliance-officer", "security", "release-manager"],
        "rollback-request" => &["admin", "release-manager", "scheduler", "service-owner"],
        "rollback-decision" => &["admin", "release-manager", "service-owner"],
        "scheduler" => &["admin", "scheduler"],
        "access-admin" => &["admin"],
        "artifact-register" => &["admin", "developer", "release-manager", "scheduler"],
        "environment-admin" => &["admin", "release-manager"],
        "environment-report" => &["admin", "scheduler", "release-manager", "developer"],
        "test-window" => &[
            "admin",
            "release-manager",
            "developer",
            "security",
            "compliance-officer",
            "service-owner",
        ],
        "release-write" => &["admin", "release-manager", "scheduler"],
        "deployment-control" => &["admin", "release-manager", "service-owner", "scheduler"],
        "monitoring-config" => &["admin", "release-manager", "service-owner"],
        "metrics-push" => &["admin", "service-owner", "scheduler"],
        "audit" => &["admin", "auditor", "compliance-officer"],
        "ledger-admin" => &["admin", "compliance-officer", "scheduler"],
        "retention-admin" => &["admin", "compliance-officer"],
        "risk-evidence" => &[
            "admin",
            "release-manager",
            "service-owner",
            "security",
            "developer",
            "scheduler",
        ],
        other => panic!("group {other} has no expectation"),
    }
}

const CENTRAL: &[&str] = &["admin", "auditor", "compliance-officer", "cab", "scheduler"];

#[test]
fn every_role_against_every_operation() {
    let authz = Authorizer::with_default_policy().expect("authorizer");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for op in operations::all() {
        for role in KNOWN_ROLES {
            let who = Identity::new(&format!("{role}-1"), [(*role).to_owned()], "payments")
                .expect("identity");
            // Platform scope (the interceptor), own unit, and another unit (isolation).
            for (scope, other_unit) in [("", false), ("payments", false), ("cards", true)] {
                let expected =
                    granted(op.group).contains(role) && (!other_unit || CENTRAL.contains(role));
                let got = authz
                    .authorize(&who, op.action, scope, &AccessContext::default())
                    .allowed;
                checked += 1;
                if got != expected {
                    wrong.push(format!(
                        "{role} x {} in {scope:?}: expected {expected}, got {got}",
                        op.action
                    ));
                }
            }
        }
    }
    assert!(checked >= 6 * KNOWN_ROLES.len() * 3);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // An operation outside the catalogue is for admins only.
    let dev = Identity::new("d", ["developer".to_owned()], "payments").expect("identity");
    let admin = Identity::new("a", ["admin".to_owned()], "central").expect("identity");
    assert!(
        !authz
            .authorize(&dev, "unlisted", "", &AccessContext::default())
            .allowed
    );
    assert!(
        authz
            .authorize(&admin, "unlisted", "", &AccessContext::default())
            .allowed
    );
}
