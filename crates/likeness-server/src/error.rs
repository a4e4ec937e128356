//! Every error the API returns: a status and a JSON body `{ "code", "message" }`, where `code`
//! is a stable, machine-readable word and `message` says what is wrong and what to do.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API error: status, stable code, and a message for people.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds after which a retry may succeed (sent as `Retry-After` with 429 and 503).
    pub retry_after: Option<u64>,
}

/// The JSON body of an error.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn busy(what: &str, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                format!("{what} is full; retry in {retry_after} s"),
            )
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<likeness_face::FaceError> for ApiError {
    fn from(e: likeness_face::FaceError) -> ApiError {
        use likeness_face::FaceError as E;
        match e {
            E::Invalid(m) => ApiError::bad_request("invalid", m),
            E::Dimension(a, b) => ApiError::bad_request(
                "embedding_length",
                format!("embeddings of different lengths ({a} and {b}) cannot be compared"),
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// A `Result` whose error is an API error.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
