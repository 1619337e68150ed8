//! Errors in one table. Each service's error enum says its gRPC code ([`ServiceError`]); the
//! store's codes are defined once ([`store_code`]); [`AppError`] is what the event-sourced app
//! answers, and it converts into a `tonic::Status` so handlers use `?`. Every status is logged
//! once (errors at ERROR, refusals at INFO) and its message capped.

use flotilla_core::store::StoreError;
use tonic::Code;

/// A service's domain error and the gRPC code it answers.
pub trait ServiceError: std::error::Error + Send + Sync + 'static {
    fn code(&self) -> Code;
}

/// The code of a store error, for every service.
pub fn store_code(e: &StoreError) -> Code {
    match e {
        StoreError::WrongExpectedVersion { .. } | StoreError::Fenced { .. } => Code::Aborted,
        StoreError::EmptyAppend { .. } | StoreError::InvalidAppend(_) => Code::InvalidArgument,
        StoreError::Corrupt { .. } => Code::DataLoss,
        StoreError::Backend(_) | StoreError::Closed | StoreError::Unsettled(_) => Code::Unavailable,
    }
}

/// What a command or query of the event-sourced app can come to.
#[derive(Debug, thiserror::Error)]
pub enum AppError<E> {
    #[error(transparent)]
    Domain(E),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other writers kept changing what the command decided on.
    #[error(
        "{stream} kept changing while the command was decided ({attempts} attempts); try again"
    )]
    Contended { stream: String, attempts: u32 },
    /// The state is not served (its store's chain is broken, or an event cannot be read).
    #[error("{0}")]
    NotServing(String),
}

impl<E: ServiceError> AppError<E> {
    pub fn code(&self) -> Code {
        match self {
            Self::Domain(e) => e.code(),
            Self::Store(e) => store_code(e),
            Self::Contended { .. } => Code::Aborted,
            Self::NotServing(_) => Code::Unavailable,
        }
    }
}

/// A status with a capped message, logged once: failures of the platform at ERROR, refusals of
/// the caller's request at INFO.
pub fn status(code: Code, message: &str) -> tonic::Status {
    let message = flotilla_core::names::capped(message).into_owned();
    match code {
        Code::Internal | Code::Unavailable | Code::DataLoss | Code::Unknown => {
            tracing::error!(code = ?code, error = %message, "request failed")
        }
        _ => tracing::info!(code = ?code, error = %message, "request refused"),
    }
    tonic::Status::new(code, message)
}

impl<E: ServiceError> From<AppError<E>> for tonic::Status {
    fn from(e: AppError<E>) -> Self {
        status(e.code(), &e.to_string())
    }
}

/// A service error as a status (for handlers that refuse before reaching the app).
pub fn refuse<E: ServiceError>(e: E) -> tonic::Status {
    status(e.code(), &e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("no such thing")]
    struct Missing;

    impl ServiceError for Missing {
        fn code(&self) -> Code {
            Code::NotFound
        }
    }

    #[test]
    fn one_table() {
        let s: tonic::Status = AppError::Domain(Missing).into();
        assert_eq!(s.code(), Code::NotFound);
        let s: tonic::Status = AppError::<Missing>::Contended {
            stream: "catalog".into(),
            attempts: 5,
        }
        .into();
        assert_eq!(s.code(), Code::Aborted, "exhausted retries are ABORTED");
        let s: tonic::Status = AppError::<Missing>::Store(StoreError::Corrupt {
            position: 1,
            reason: "x".into(),
        })
        .into();
        assert_eq!(s.code(), Code::DataLoss);
        let long = "x".repeat(100_000);
        assert!(status(Code::InvalidArgument, &long).message().len() < 3_000);
    }
}
