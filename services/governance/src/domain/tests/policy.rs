//! Approval requirements by tier, risk and unit; release naming rules.

use super::*;

#[test]
fn requirements_follow_tier_risk_unit_overrides_and_personal_data() {
    let mut p = PolicyDocument::default();
    let roles = |v: Option<Vec<RoleRequirement>>| {
        v.expect("a rule matches")
            .into_iter()
            .map(|q| (q.role, q.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        roles(p.requirements_for("payments", "prod", 3, 10, false)),
        vec![("service-owner".to_owned(), 1)]
    );
    assert_eq!(
        roles(p.requirements_for("payments", "prod", 1, 90, true)),
        vec![
            ("business".to_owned(), 1),
            ("cab".to_owned(), 1),
            ("peer-review".to_owned(), 1),
            ("security".to_owned(), 1),
            ("service-owner".to_owned(), 1),
        ]
    );
    // A unit override replaces the defaults for that unit only; a partial one is refused,
    // since the unit would have releases no rule covers.
    let override_rule = |tier: u8| ApprovalRule {
        tier,
        min_risk: 0,
        max_risk: 100,
        requirements: vec![RoleRequirement {
            role: "service-owner".into(),
            count: 2,
        }],
        business_unit: "cards".into(),
        environments: vec![],
    };
    p.approval_rules.push(override_rule(3));
    assert!(
        p.validate()
            .expect_err("refused")
            .to_string()
            .contains("unit cards's rule"),
        "partial override"
    );
    assert!(
        p.requirements_for("cards", "prod", 1, 10, false).is_none(),
        "no matching rule is never 'no approvals'"
    );
    for tier in [1, 2, 4] {
        p.approval_rules.push(override_rule(tier));
    }
    assert_eq!(
        roles(p.requirements_for("cards", "prod", 3, 10, false)),
        vec![("service-owner".to_owned(), 2)]
    );
    assert_eq!(
        roles(p.requirements_for("payments", "prod", 3, 10, false)),
        vec![("service-owner".to_owned(), 1)]
    );
    p.validate().expect("valid");
    // A gap in the default bands is refused.
    let mut gap = PolicyDocument::default();
    gap.approval_rules
        .retain(|r| !(r.tier == 2 && r.min_risk == 40));
    assert!(
        gap.validate()
            .expect_err("refused")
            .to_string()
            .contains("tier 2 at risk score 40")
    );
}

#[test]
fn naming_rules_semver_and_calver() {
    let mut p = PolicyDocument::default();
    assert!(p.check_version("1.4.0").is_ok());
    assert!(p.check_version("2.0.0-rc.1").is_ok());
    assert!(p.check_version("1.4").is_err());
    p.naming.scheme = VersionScheme::Calver("YYYY.0M.MICRO".into());
    p.validate().expect("valid");
    assert!(p.check_version("2026.11.3").is_ok());
    assert!(p.check_version("2026.1.3").is_err(), "0M needs two digits");
    assert!(p.check_version("2026.13.0").is_err());
    assert!(p.check_version("26.11.3").is_err());
    assert!(p.check_version("2026.11").is_err());
    p.naming.scheme = VersionScheme::Calver("YYYY.QQ".into());
    assert!(p.validate().is_err());
}
