//! Flotilla's protobuf contracts (`proto/flotilla/<area>/v1`), generated at build time.
//!
//! Proto types stay at the edge: services convert them to domain types in their `grpc` module.
#![allow(clippy::all, missing_docs)]

/// Encoded `FileDescriptorSet` of every Flotilla contract and its imports, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/flotilla_descriptor.bin"));

pub mod flotilla {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("flotilla.common.v1");
        }
    }
    pub mod eventstore {
        pub mod v1 {
            tonic::include_proto!("flotilla.eventstore.v1");
        }
    }
    pub mod governance {
        pub mod v1 {
            tonic::include_proto!("flotilla.governance.v1");
        }
    }
    pub mod dependency {
        pub mod v1 {
            tonic::include_proto!("flotilla.dependency.v1");
        }
    }
    pub mod orchestration {
        pub mod v1 {
            tonic::include_proto!("flotilla.orchestration.v1");
        }
    }
    pub mod risk {
        pub mod v1 {
            tonic::include_proto!("flotilla.risk.v1");
        }
    }
    pub mod monitoring {
        pub mod v1 {
            tonic::include_proto!("flotilla.monitoring.v1");
        }
    }
    pub mod compliance {
        pub mod v1 {
            tonic::include_proto!("flotilla.compliance.v1");
        }
    }
}

/// Full gRPC names of every service Flotilla's contracts declare (`flotilla.<area>.v1.<Name>`).
pub fn platform_services() -> Vec<String> {
    use prost::Message;
    let Ok(fds) = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    let mut names: Vec<String> = fds
        .file
        .iter()
        .filter(|f| f.package().starts_with("flotilla."))
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| format!("{}.{}", f.package(), s.name()))
        })
        .collect();
    names.sort();
    names
}

pub use flotilla::{
    common, compliance, dependency, eventstore, governance, monitoring, orchestration, risk,
};

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_holds_every_area() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let packages: Vec<_> = fds.file.iter().filter_map(|f| f.package.clone()).collect();
        for area in [
            "common",
            "eventstore",
            "governance",
            "dependency",
            "orchestration",
            "risk",
            "monitoring",
            "compliance",
        ] {
            let want = format!("flotilla.{area}.v1");
            assert!(
                packages.contains(&want),
                "missing package {want}: {packages:?}"
            );
        }
        assert!(
            packages.iter().any(|p| p == "google.protobuf"),
            "imports must be included"
        );
    }

    #[test]
    fn platform_services_come_from_the_contracts() {
        let names = super::platform_services();
        for s in [
            "flotilla.governance.v1.GovernanceService",
            "flotilla.dependency.v1.DependencyMappingService",
            "flotilla.compliance.v1.ComplianceService",
        ] {
            assert!(names.iter().any(|n| n == s), "{s} missing from {names:?}");
        }
        assert!(names.iter().all(|n| n.starts_with("flotilla.")));
    }
}
