//! Properties of the rules over the whole input space: never negative, monotone in
//! scarcity and demand, a bigger tier discount never raises the price.

use pricing::pricing::{PriceInput, Tier, quote};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn base() -> impl Strategy<Value = Decimal> {
    (1i64..=100_000_000).prop_map(|cents| Decimal::new(cents, 2))
}

proptest! {
    #[test]
    fn never_negative_and_rounded_to_cents(b in base(), avail in 0u64..=1_000_000_000, qty in 1u32..=10_000, demand in 0u64..=1_000_000_000) {
        let q = quote(&PriceInput { base_price: b, quantity_available: avail, quantity: qty, recent_demand: demand });
        prop_assert!(q.final_price >= Decimal::ZERO);
        prop_assert_eq!(q.final_price, q.final_price.round_dp(2));
        prop_assert!(q.final_price > Decimal::ZERO, "a price of at least a cent never rounds to zero");
    }

    #[test]
    fn scarcer_stock_never_costs_less(b in base(), a1 in 0u64..=1_000, a2 in 0u64..=1_000, qty in 1u32..=10_000, demand in 0u64..=100) {
        let (less, more) = if a1 <= a2 { (a1, a2) } else { (a2, a1) };
        let p = |avail| quote(&PriceInput { base_price: b, quantity_available: avail, quantity: qty, recent_demand: demand }).final_price;
        prop_assert!(p(less) >= p(more));
    }

    #[test]
    fn more_demand_never_costs_less(b in base(), d1 in 0u64..=100, d2 in 0u64..=100, avail in 0u64..=1_000, qty in 1u32..=10_000) {
        let (lo, hi) = if d1 <= d2 { (d1, d2) } else { (d2, d1) };
        let p = |demand| quote(&PriceInput { base_price: b, quantity_available: avail, quantity: qty, recent_demand: demand }).final_price;
        prop_assert!(p(hi) >= p(lo));
    }

    #[test]
    fn a_bigger_tier_discount_never_raises_the_price(b in base(), q1 in 1u32..=10_000, q2 in 1u32..=10_000, avail in 0u64..=1_000, demand in 0u64..=100) {
        let p = |qty| quote(&PriceInput { base_price: b, quantity_available: avail, quantity: qty, recent_demand: demand });
        let (x, y) = (p(q1), p(q2));
        if x.tier.discount_percent() >= y.tier.discount_percent() {
            prop_assert!(x.final_price <= y.final_price);
        }
        prop_assert_eq!(Tier::for_quantity(q1.min(q2)).discount_percent() <= Tier::for_quantity(q1.max(q2)).discount_percent(), true);
    }
}
