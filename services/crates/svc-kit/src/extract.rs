//! Extractors whose rejections speak the shared error JSON: `Json` (400 / 413 / 415 / 422
//! with field details) and `AdminGuard` (bearer token, constant-time compare).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, FieldError};

/// JSON body extractor: like axum's, but every rejection is an `ApiError`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::Malformed("the request body could not be read".to_owned())
            }
        })?;
        let value = parse_json(&body)?;
        // Every polyshop body is an object; serde would also take a struct from an array.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        }
        Ok(Json(value))
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// svc-wire's rule: `application/json`, optionally `; charset=utf-8`, case-insensitive.
fn is_json(ct: Option<&axum::http::HeaderValue>) -> bool {
    svc_wire::is_json_content_type(ct.map(axum::http::HeaderValue::as_bytes))
}

/// Parses JSON: syntax errors are 400 `malformed_request`, data errors 422 with the field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(classify(&path, &inner));
        }
    };
    de.end()
        .map_err(|_| ApiError::Malformed("trailing characters after the JSON body".to_owned()))?;
    Ok(value)
}

fn classify(path: &str, err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Data => {
            let text = err.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text);
            let field_error = if let Some(rest) = text.strip_prefix("missing field `") {
                let name = rest.split('`').next().unwrap_or("");
                FieldError::new(join(path, name), "is required")
            } else if let Some(rest) = text.strip_prefix("invalid type: ") {
                let expected = rest.split(", expected ").nth(1).unwrap_or("another type");
                FieldError::new(field_or_body(path), format!("must be {}", human(expected)))
            } else if let Some(rest) = text.strip_prefix("invalid value: ") {
                let expected = rest.split(", expected ").nth(1).unwrap_or("another value");
                FieldError::new(field_or_body(path), format!("must be {}", human(expected)))
            } else {
                FieldError::new(field_or_body(path), "is invalid")
            };
            ApiError::Validation(vec![field_error])
        }
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::Malformed("the request body is not valid JSON".to_owned())
        }
    }
}

fn field_or_body(path: &str) -> String {
    if path.is_empty() || path == "." {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn human(expected: &str) -> String {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => {
            "an integer".to_owned()
        }
        "f32" | "f64" => "a number".to_owned(),
        "a string" | "a boolean" => expected.to_owned(),
        other if other.starts_with("struct ") => "an object".to_owned(),
        other => other.to_owned(),
    }
}

/// The configured admin token (`ADMIN_TOKEN`); `None` turns admin routes off (404).
#[derive(Clone, Default)]
pub struct AdminToken(pub Option<Arc<str>>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AdminToken(***)"
        } else {
            "AdminToken(unset)"
        })
    }
}

/// Proof that the request carried the admin bearer token. Put it first in an admin handler.
#[derive(Debug, Clone, Copy)]
pub struct AdminGuard;

impl<S> FromRequestParts<S> for AdminGuard
where
    S: Send + Sync,
    AdminToken: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let AdminToken(token) = AdminToken::from_ref(state);
        check_admin(token.as_deref(), parts.headers.get(header::AUTHORIZATION))
    }
}

/// 404 when admin routes are off, 401 without a bearer token, 403 with a wrong one.
pub fn check_admin(
    expected: Option<&str>,
    authorization: Option<&axum::http::HeaderValue>,
) -> Result<AdminGuard, ApiError> {
    let Some(expected) = expected else {
        return Err(ApiError::NotFound);
    };
    authorize(
        expected,
        authorization.map(axum::http::HeaderValue::as_bytes),
    )
}

/// 401 without a bearer token (absent, empty, another scheme), 403 with a wrong one; the
/// token is compared in constant time. Bytes, not `to_str`: a latin-1 or control byte in
/// the token is a wrong token (403), not a missing one.
pub fn authorize(expected: &str, authorization: Option<&[u8]>) -> Result<AdminGuard, ApiError> {
    let given = svc_wire::bearer_token(authorization).ok_or(ApiError::Unauthorized)?;
    if bool::from(given.ct_eq(expected.as_bytes())) {
        Ok(AdminGuard)
    } else {
        Err(ApiError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        id: i64,
        price: Option<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Batch {
        items: Vec<Item>,
    }

    fn fields(err: ApiError) -> Vec<FieldError> {
        match err {
            ApiError::Validation(f) => f,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_malformed() {
        for body in ["", "{", "{\"id\": }", "nope", "{\"id\":1} x"] {
            let err = parse_json::<Item>(body.as_bytes()).expect_err(body);
            assert!(matches!(err, ApiError::Malformed(_)), "{body}: {err:?}");
        }
    }

    #[test]
    fn data_errors_name_the_field() {
        let f = fields(parse_json::<Item>(b"{}").expect_err("missing"));
        assert_eq!(f, vec![FieldError::new("id", "is required")]);
        let f = fields(parse_json::<Item>(br#"{"id":"x"}"#).expect_err("type"));
        assert_eq!(f, vec![FieldError::new("id", "must be an integer")]);
        let f = fields(parse_json::<Item>(br#"{"id":1.5}"#).expect_err("float"));
        assert_eq!(f[0].field, "id");
        let f = fields(
            parse_json::<Batch>(br#"{"items":[{"id":1},{"id":true}]}"#).expect_err("nested"),
        );
        assert_eq!(f[0].field, "items[1].id");
        let f = fields(parse_json::<Batch>(br#"{"items":[{}]}"#).expect_err("nested missing"));
        assert_eq!(f[0].field, "items[0].id");
        let f = fields(parse_json::<Item>(b"[1]").expect_err("array"));
        assert_eq!(f[0].field, "body");
    }

    #[test]
    fn content_types() {
        assert!(is_json(Some(&HeaderValue::from_static("application/json"))));
        assert!(is_json(Some(&HeaderValue::from_static(
            "Application/JSON; charset=utf-8"
        ))));
        // Only application/json itself (header-vectors.json).
        assert!(!is_json(Some(&HeaderValue::from_static(
            "application/merge-patch+json"
        ))));
        assert!(!is_json(Some(&HeaderValue::from_static("text/plain"))));
        assert!(!is_json(None));
    }

    #[test]
    fn admin_token_checks() {
        let ok = HeaderValue::from_static("Bearer s3cret");
        let wrong = HeaderValue::from_static("Bearer s3cret2");
        let basic = HeaderValue::from_static("Basic czNjcmV0");
        assert!(matches!(
            check_admin(None, Some(&ok)),
            Err(ApiError::NotFound)
        ));
        assert!(check_admin(Some("s3cret"), Some(&ok)).is_ok());
        assert!(matches!(
            check_admin(Some("s3cret"), None),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            check_admin(Some("s3cret"), Some(&basic)),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            check_admin(Some("s3cret"), Some(&wrong)),
            Err(ApiError::Forbidden)
        ));
    }
}
