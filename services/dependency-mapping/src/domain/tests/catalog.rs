//! Commands validate and change nothing when refused; names.

use super::*;

#[test]
fn invalid_commands_are_refused_precisely() {
    let c = shop();
    assert!(ServiceName::parse("Bad_Name").is_err());
    assert!(ServiceName::parse("").is_err());
    assert!(Tier::new(5).is_err() && Tier::new(0).is_err());
    assert_eq!(
        c.changes(Command::RegisterService(spec("web", 2, false, "retail"))),
        Err(DomainError::AlreadyRegistered(name("web")))
    );
    assert_eq!(
        c.changes(Command::UpdateService(spec("ghost", 2, false, "x"))),
        Err(DomainError::UnknownService(name("ghost")))
    );
    assert_eq!(
        c.changes(Command::DeclareDependency(dep(
            "web",
            "web",
            EdgeKind::SyncApi
        ))),
        Err(DomainError::SelfDependency(name("web")))
    );
    assert_eq!(
        c.changes(Command::DeclareDependency(dep(
            "web",
            "ghost",
            EdgeKind::SyncApi
        ))),
        Err(DomainError::UnknownService(name("ghost")))
    );
    assert!(matches!(
        c.changes(Command::RegisterService(spec("new", 2, false, " "))),
        Err(DomainError::Invalid {
            field: "business unit",
            ..
        })
    ));
    assert_eq!(
        c.changes(Command::RemoveDependency {
            consumer: name("ledger"),
            provider: name("web")
        }),
        Err(DomainError::UnknownDependency {
            consumer: name("ledger"),
            provider: name("web")
        })
    );
    let lonely = CoDeploymentPin {
        group: "g".into(),
        services: vec![name("web")],
        reason: "r".into(),
    };
    assert!(matches!(
        c.changes(Command::PinCoDeployment(lonely)),
        Err(DomainError::Invalid {
            field: "services",
            ..
        })
    ));
    // Re-declaring the same edge or re-registering the same spec changes nothing.
    assert_eq!(
        c.changes(Command::DeclareDependency(dep(
            "web",
            "checkout",
            EdgeKind::SyncApi
        ))),
        Ok(vec![])
    );
    assert_eq!(
        c.changes(Command::UpdateService(spec("web", 2, false, "retail"))),
        Ok(vec![])
    );
}

#[test]
fn service_names_are_dns_names_so_opentelemetry_and_namespaced_names_fit() {
    for ok in [
        "checkout",
        "checkout.svc",
        "payments.checkout.svc",
        "a1-b2.c3",
    ] {
        assert!(ServiceName::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "Checkout",
        "checkout_svc",
        "checkout..svc",
        "checkout.",
        ".checkout",
        "-a",
        "a.-b",
        "a-.b",
        "1abc",
    ] {
        assert!(ServiceName::parse(bad).is_err(), "{bad:?}");
    }
    assert!(ServiceName::parse(&format!("a{}", ".b".repeat(126))).is_ok());
    assert!(ServiceName::parse(&format!("a{}", ".b".repeat(127))).is_err());
    assert!(ServiceName::parse(&"a".repeat(64)).is_err());
}
