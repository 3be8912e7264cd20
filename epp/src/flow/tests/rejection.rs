//! How a request that leaves flow control undispatched is answered: its status, dropped
//! reason and body, through the one `Refusal` type.

use super::*;

#[test]
fn rejections_map_to_upstream_statuses_and_reasons() {
    let cases = [
        (
            Outcome::RejectedCapacity,
            429,
            "rejected-saturated",
            "ResourceExhausted",
        ),
        (
            Outcome::RejectedSaturated,
            429,
            "rejected-saturated",
            "ResourceExhausted",
        ),
        (
            Outcome::EvictedTtl,
            429,
            "rejected-ttl-expired",
            "ResourceExhausted",
        ),
        (
            Outcome::RejectedNoEndpoints,
            503,
            "rejected-no-endpoints",
            "ServiceUnavailable",
        ),
        (
            Outcome::EvictedNoEndpoints,
            503,
            "rejected-no-endpoints",
            "ServiceUnavailable",
        ),
        (
            Outcome::EvictedContextCancelled,
            503,
            "rejected-context-cancelled",
            "ServiceUnavailable",
        ),
        (
            Outcome::RejectedOther,
            503,
            "rejected-shutting-down",
            "ServiceUnavailable",
        ),
        (
            Outcome::EvictedOther,
            503,
            "rejected-shutting-down",
            "ServiceUnavailable",
        ),
    ];
    for (outcome, status, reason, code) in cases {
        let rejection = Rejection::new(outcome, 0, Duration::from_millis(1500));
        assert_eq!(rejection.status(), status, "{outcome:?}");
        let refusal = rejection.refusal();
        assert_eq!(refusal.reason, reason, "{outcome:?}");
        assert_eq!(refusal.status(), status, "{outcome:?}");
        assert!(
            refusal
                .text()
                .starts_with(&format!("inference error: {code} - ")),
            "{outcome:?}"
        );
    }
    let ttl = Rejection::new(Outcome::EvictedTtl, 0, Duration::from_millis(1500));
    assert_eq!(
        ttl.refusal().text(),
        "inference error: ResourceExhausted - request timed out in queue after 1.500s (defaultRequestTTL)"
    );
    assert_eq!(
        Outcome::ALL.iter().map(|o| o.index()).collect::<Vec<_>>(),
        (0..9).collect::<Vec<_>>()
    );
    assert_eq!(Outcome::EvictedTtl.label(), "EvictedTTL");
}
