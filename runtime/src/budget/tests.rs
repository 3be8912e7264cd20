use super::*;

#[test]
fn a_lease_grows_within_the_limit_and_returns_its_bytes_on_drop() {
    let budget = ByteBudget::new(100);
    let mut lease = budget.lease();
    assert_eq!(lease.grow(60), Ok(()));
    assert_eq!(lease.grow_to(80), Ok(()));
    assert_eq!((lease.held(), budget.in_use()), (80, 80));
    drop(lease);
    assert_eq!(budget.in_use(), 0);
}

#[test]
fn a_grow_past_the_limit_is_refused_and_takes_nothing() {
    let budget = ByteBudget::new(100);
    let mut first = budget.lease();
    first.grow(70).unwrap();
    let mut second = budget.lease();
    let refused = second.grow(31).unwrap_err();
    assert_eq!(
        refused,
        OverBudget {
            requested: 31,
            in_use: 70,
            limit: 100
        }
    );
    assert_eq!((second.held(), budget.in_use()), (0, 70));
    assert!(refused.to_string().contains("70 of 100 bytes"), "{refused}");
    // What the first lease gives back the second can take.
    first.release();
    assert_eq!(second.grow(100), Ok(()));
}

#[test]
fn an_overflowing_request_is_refused_not_wrapped() {
    let budget = ByteBudget::unlimited();
    let mut lease = budget.lease();
    lease.grow(usize::MAX - 1).unwrap();
    assert!(budget.lease().grow(2).is_err());
    assert_eq!(budget.in_use(), usize::MAX - 1);
}

#[test]
fn concurrent_leases_never_hold_more_than_the_limit() {
    let budget = ByteBudget::new(1_000);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let budget = budget.clone();
            std::thread::spawn(move || {
                let mut granted = 0usize;
                for round in 0..2_000usize {
                    let mut lease = budget.lease();
                    if lease.grow(1 + round % 300).is_ok() {
                        granted += 1;
                        assert!(budget.in_use() <= budget.limit());
                    }
                }
                granted
            })
        })
        .collect();
    let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(granted > 0);
    assert_eq!(budget.in_use(), 0);
}
