//! The pricing rules of docs/DESIGN.md, in decimal, free of HTTP: scarcity, demand, tier
//! discount, and rounding to cents half away from zero at the very end.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// Largest product id, stock, demand (errors.md bounds).
pub const MAX_ID: u64 = 1_000_000_000;
/// Largest stock or recent demand.
pub const MAX_UNITS: u64 = 1_000_000_000;
/// Largest ordered quantity.
pub const MAX_QUANTITY: u32 = 10_000;

const ONE: Decimal = Decimal::ONE;
// Decimal::from_parts(lo, mid, hi, negative, scale): 15 x 10^-1 = 1.5 and so on.
const SCARCE: Decimal = Decimal::from_parts(15, 0, 0, false, 1);
const LOW: Decimal = Decimal::from_parts(12, 0, 0, false, 1);
const DEMAND_STEP: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
const DEMAND_CAP: Decimal = Decimal::from_parts(125, 0, 0, false, 2);
const HUNDRED: Decimal = Decimal::from_parts(100, 0, 0, false, 0);

/// The discount tier of an order quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// 1-9 units, 5 %.
    Basic,
    /// 10-49 units, 10 %.
    Silver,
    /// 50-99 units, 15 %.
    Gold,
    /// 100 units and more, 20 %.
    Platinum,
}

impl Tier {
    /// All tiers, cheapest discount first.
    pub const ALL: [Tier; 4] = [Tier::Basic, Tier::Silver, Tier::Gold, Tier::Platinum];

    /// The tier of `quantity` units.
    pub fn for_quantity(quantity: u32) -> Self {
        match quantity {
            0..=9 => Self::Basic,
            10..=49 => Self::Silver,
            50..=99 => Self::Gold,
            _ => Self::Platinum,
        }
    }

    /// Discount in percent.
    pub fn discount_percent(self) -> Decimal {
        Decimal::from(match self {
            Self::Basic => 5,
            Self::Silver => 10,
            Self::Gold => 15,
            Self::Platinum => 20,
        })
    }

    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Silver => "silver",
            Self::Gold => "gold",
            Self::Platinum => "platinum",
        }
    }
}

/// available < 10 -> 1.5; < 50 -> 1.2; else 1.0.
pub fn scarcity_factor(available: u64) -> Decimal {
    match available {
        0..=9 => SCARCE,
        10..=49 => LOW,
        _ => ONE,
    }
}

/// 1.00 + 0.01 per unit reserved in the last hour, capped at 1.25.
pub fn demand_factor(recent_demand: u64) -> Decimal {
    if recent_demand >= 25 {
        return DEMAND_CAP;
    }
    ONE + DEMAND_STEP * Decimal::from(recent_demand)
}

/// Rounds money to cents, half away from zero.
pub fn round_cents(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// What the rules need to price one line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceInput {
    /// Base price (0.01 .. 10^6, at most two decimals).
    pub base_price: Decimal,
    /// Units in stock (0 .. 10^9).
    pub quantity_available: u64,
    /// Units ordered (1 .. 10,000).
    pub quantity: u32,
    /// Units reserved in the last hour (0 .. 10^9).
    pub recent_demand: u64,
}

/// The priced line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quote {
    /// Base price used.
    pub base_price: Decimal,
    /// Unit price, rounded to cents.
    pub final_price: Decimal,
    /// Unit price before rounding (informative).
    pub unrounded: Decimal,
    /// Discount tier of the quantity.
    pub tier: Tier,
    /// Scarcity multiplier.
    pub scarcity_factor: Decimal,
    /// Demand multiplier.
    pub demand_factor: Decimal,
}

impl Quote {
    /// Discount in percent of the tier.
    pub fn discount_percent(&self) -> Decimal {
        self.tier.discount_percent()
    }

    /// Rounded unit price times quantity, rounded again (docs/DESIGN.md: total of the order).
    pub fn total(&self, quantity: u32) -> Decimal {
        round_cents(self.final_price * Decimal::from(quantity))
    }
}

/// final = base x demand x scarcity x (1 - discount), rounded at the end.
pub fn quote(input: &PriceInput) -> Quote {
    let tier = Tier::for_quantity(input.quantity);
    let scarcity = scarcity_factor(input.quantity_available);
    let demand = demand_factor(input.recent_demand);
    let keep = ONE - tier.discount_percent() / HUNDRED;
    let unrounded = input.base_price * demand * scarcity * keep;
    Quote {
        base_price: input.base_price,
        final_price: round_cents(unrounded),
        unrounded,
        tier,
        scarcity_factor: scarcity,
        demand_factor: demand,
    }
}

/// Money as a JSON number: the decimal (already at cents) converted at the edge.
pub fn to_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// A JSON number as money: bounds-checked (0.01 .. 10^6) and kept to two decimals.
/// `None` outside the bounds or when it is not a finite number.
pub fn base_price_from_f64(v: f64) -> Option<Decimal> {
    if !v.is_finite() || !(0.01..=1_000_000.0).contains(&v) {
        return None;
    }
    // Display of an f64 is its shortest round-trip form (0.3 -> "0.3"), so the decimal is
    // the number the client wrote, not the binary float's expansion.
    let d: Decimal = format!("{v}").parse().ok()?;
    let d = round_cents(d);
    (d >= Decimal::from_parts(1, 0, 0, false, 2)).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example() {
        let q = quote(&PriceInput {
            base_price: Decimal::from(173),
            quantity_available: 223,
            quantity: 1,
            recent_demand: 0,
        });
        assert_eq!(q.final_price.to_string(), "164.35");
        assert_eq!(q.tier, Tier::Basic);
        assert_eq!(to_f64(q.discount_percent()), 5.0);
    }

    #[test]
    fn money_from_json_numbers() {
        assert_eq!(
            base_price_from_f64(0.3).map(|d| d.to_string()),
            Some("0.3".into())
        );
        assert_eq!(
            base_price_from_f64(0.015).map(|d| d.to_string()),
            Some("0.02".into())
        );
        assert_eq!(base_price_from_f64(0.001), None);
        assert_eq!(base_price_from_f64(0.0), None);
        assert_eq!(base_price_from_f64(1_000_000.01), None);
        assert_eq!(base_price_from_f64(f64::NAN), None);
        assert!(base_price_from_f64(1_000_000.0).is_some());
    }
}
