//! Times between the domain and protobuf, one rule for every service: what a request says is
//! checked (years 0001 to 9999, nanoseconds in range), what was recorded is taken as it is.

use flotilla_core::event::Timestamp;

/// A time as protobuf.
pub fn to_proto(t: Timestamp) -> prost_types::Timestamp {
    let (seconds, nanos) = t.seconds_and_nanos();
    prost_types::Timestamp { seconds, nanos }
}

/// A time a request gives, or why it is not one.
pub fn from_request(t: &prost_types::Timestamp) -> Result<Timestamp, String> {
    Timestamp::from_parts(t.seconds, t.nanos)
}

/// A time as recorded: never refused (out of range saturates), absent is the epoch.
pub fn stored(t: Option<&prost_types::Timestamp>) -> Timestamp {
    t.map_or(Timestamp(0), |t| {
        Timestamp(
            t.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(t.nanos) / 1_000),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_records_are_not() {
        let t = Timestamp(1_790_000_000_123_456);
        assert_eq!(from_request(&to_proto(t)), Ok(t));
        let far = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(from_request(&far).is_err());
        assert_eq!(stored(Some(&far)), Timestamp(i64::MAX));
        assert!(
            from_request(&prost_types::Timestamp {
                seconds: 0,
                nanos: -1
            })
            .is_err()
        );
        assert_eq!(stored(None), Timestamp(0));
    }
}
