//! Every vector of services/contracts/pricing-vectors.json, valid and invalid, through the
//! real router (and the totals through the rules module).

mod common;

use common::{memory_app, post_json, send};
use pricing::pricing::{PriceInput, base_price_from_f64, quote, to_f64};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/contracts/pricing-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors file"))
        .expect("vectors json")
}

#[tokio::test]
async fn every_valid_vector_prices_as_expected() {
    let all = vectors();
    let valid = all["vectors"].as_array().expect("vectors");
    assert!(valid.len() >= 40);
    for v in valid {
        let name = v["name"].as_str().unwrap_or("?");
        let (status, _, body) = send(
            memory_app(),
            post_json("/api/calculate_price", &v["input"].to_string()),
        )
        .await;
        assert_eq!(status, 200, "{name}: {body}");
        let exp = &v["expected"];
        for key in [
            "base_price",
            "final_price",
            "discount_percent",
            "price_tier",
            "scarcity_factor",
            "demand_factor",
        ] {
            assert_eq!(body[key], exp[key], "{name}: {key} in {body}");
        }
        assert_eq!(body["currency"], "USD");
        assert_eq!(body["product_id"], v["input"]["product_id"]);

        let input = &v["input"];
        let q = quote(&PriceInput {
            base_price: base_price_from_f64(input["base_price"].as_f64().expect("base"))
                .expect("in bounds"),
            quantity_available: input["quantity_available"].as_u64().expect("stock"),
            quantity: input["quantity"].as_u64().expect("qty") as u32,
            recent_demand: input["recent_demand"].as_u64().expect("demand"),
        });
        assert_eq!(
            to_f64(q.total(input["quantity"].as_u64().expect("qty") as u32)),
            exp["total_price"].as_f64().expect("total"),
            "{name}"
        );
        let unrounded: rust_decimal::Decimal = exp["unrounded"]
            .as_str()
            .expect("unrounded")
            .parse()
            .expect("decimal");
        assert_eq!(q.unrounded, unrounded, "{name}");
    }
}

#[tokio::test]
async fn every_invalid_vector_is_rejected_with_its_field() {
    let all = vectors();
    let invalid = all["invalid"].as_array().expect("invalid");
    assert!(!invalid.is_empty());
    for v in invalid {
        let name = v["name"].as_str().unwrap_or("?");
        let (status, _, body) = send(
            memory_app(),
            post_json("/api/calculate_price", &v["input"].to_string()),
        )
        .await;
        assert_eq!(
            status.as_u16() as u64,
            v["status"].as_u64().expect("status"),
            "{name}: {body}"
        );
        common::assert_error(&body, v["code"].as_str().expect("code"));
        let fields: Vec<&str> = body["error"]["details"]
            .as_array()
            .map(|d| d.iter().filter_map(|f| f["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.contains(&v["field"].as_str().expect("field")),
            "{name}: {body}"
        );
    }
}
