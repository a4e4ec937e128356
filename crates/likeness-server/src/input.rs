//! Request bodies: images as multipart `file` fields or as base64 strings in JSON, options as
//! form fields, JSON fields or query parameters (CompreFace puts `limit`,
//! `det_prob_threshold`, `prediction_count` and `subject` in the query).

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use base64::Engine;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// A parsed request body.
#[derive(Debug, Default)]
pub struct Form {
    /// Image fields, by field name, in order (a field may repeat: `style`).
    pub files: Vec<(String, Vec<u8>)>,
    /// Every other field, and the query parameters (body fields win).
    pub fields: BTreeMap<String, Value>,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the request body is larger than the service's limit of {limit} bytes; send a \
             smaller image (the web page scales photos down first) or start the service with a \
             larger --body-limit"
        ),
    )
}

impl Form {
    /// Reads `request`'s body; in JSON, the fields named in `image_fields` hold base64 images
    /// (a string, or an array of strings; an optional `data:…;base64,` prefix is allowed).
    pub async fn read(
        request: Request,
        image_fields: &[&str],
        limit: usize,
        query: BTreeMap<String, String>,
    ) -> ApiResult<Form> {
        let mut form = Form::default();
        for (k, v) in query {
            form.fields.insert(k, Value::String(v));
        }
        if let Some(len) = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > limit as u64
        {
            return Err(too_large(limit));
        }
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = Multipart::from_request(request, &())
                .await
                .map_err(|e| ApiError::bad_request("bad_multipart", e.body_text()))?;
            loop {
                let field = match multipart.next_field().await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        return Err(too_large(limit));
                    }
                    Err(e) => return Err(ApiError::bad_request("bad_multipart", e.body_text())),
                };
                let name = field.name().unwrap_or("").to_string();
                let is_file = field.file_name().is_some() || image_fields.contains(&name.as_str());
                let bytes = match field.bytes().await {
                    Ok(b) => b,
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        return Err(too_large(limit));
                    }
                    Err(e) => return Err(ApiError::bad_request("bad_multipart", e.body_text())),
                };
                if is_file {
                    form.files.push((name, bytes.to_vec()));
                } else {
                    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                        ApiError::bad_request(
                            "bad_field",
                            format!("form field `{name}` is not UTF-8 text"),
                        )
                    })?;
                    form.fields.insert(name, Value::String(text));
                }
            }
        } else if content_type.starts_with("application/json") {
            let bytes = axum::body::to_bytes(request.into_body(), limit)
                .await
                .map_err(|e| {
                    if format!("{e:?}").contains("LengthLimit") {
                        too_large(limit)
                    } else {
                        ApiError::bad_request("bad_body", format!("reading the body: {e}"))
                    }
                })?;
            let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::bad_request("bad_json", format!("the body is not valid JSON: {e}"))
            })?;
            let Value::Object(map) = value else {
                return Err(ApiError::bad_request(
                    "bad_json",
                    "the JSON body must be an object",
                ));
            };
            for (k, v) in map {
                if image_fields.contains(&k.as_str()) {
                    let items = match v {
                        Value::Array(items) => items,
                        other => vec![other],
                    };
                    for item in items {
                        let Value::String(text) = item else {
                            return Err(ApiError::bad_request(
                                "bad_field",
                                format!("`{k}` must be a base64 string (or an array of them)"),
                            ));
                        };
                        form.files.push((k.clone(), decode_base64(&k, &text)?));
                    }
                } else {
                    form.fields.insert(k, v);
                }
            }
        } else {
            // A body-less request (or one whose body we ignore) still has its query.
            let has_body = request
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v != "0")
                || request.headers().contains_key(header::TRANSFER_ENCODING);
            if has_body {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!(
                        "send the body as multipart/form-data (an image in field `file`) or as \
                         application/json (base64 images); got `{content_type}`"
                    ),
                ));
            }
        }
        Ok(form)
    }

    /// The only image of field `name`.
    pub fn image(&self, name: &str) -> ApiResult<&[u8]> {
        let mut found = self.files.iter().filter(|(n, _)| n == name);
        match (found.next(), found.next()) {
            (Some((_, bytes)), None) => Ok(bytes),
            (None, _) => Err(ApiError::bad_request(
                "missing_image",
                format!(
                    "no image in field `{name}`: send it as a multipart file field `{name}` or \
                     as base64 in a JSON field `{name}`"
                ),
            )),
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                "too_many_images",
                format!("field `{name}` holds more than one image; send one"),
            )),
        }
    }

    /// Every image of field `name`.
    pub fn images(&self, name: &str) -> Vec<&[u8]> {
        self.files
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .collect()
    }

    /// A text field.
    pub fn text(&self, name: &str) -> ApiResult<Option<String>> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::bad_request(
                "bad_field",
                format!("`{name}` must be a string, got {other}"),
            )),
        }
    }

    /// A number field (a JSON number, or text that parses), checked to be finite and within
    /// `range`.
    pub fn number(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<f64>,
    ) -> ApiResult<Option<f64>> {
        let bad = |got: &str| {
            ApiError::bad_request(
                "bad_field",
                format!(
                    "`{name}` must be a number from {} to {}, got {got}",
                    range.start(),
                    range.end()
                ),
            )
        };
        let value = match self.fields.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| bad(&n.to_string()))?,
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| bad(s))?,
            Some(other) => return Err(bad(&other.to_string())),
        };
        if !value.is_finite() || !range.contains(&value) {
            return Err(bad(&value.to_string()));
        }
        Ok(Some(value))
    }

    /// A whole-number field within `range`.
    pub fn count(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<usize>,
    ) -> ApiResult<Option<usize>> {
        let value = self.number(name, *range.start() as f64..=*range.end() as f64)?;
        match value {
            None => Ok(None),
            Some(v) if v.fract() == 0.0 => Ok(Some(v as usize)),
            Some(v) => Err(ApiError::bad_request(
                "bad_field",
                format!("`{name}` must be a whole number, got {v}"),
            )),
        }
    }

    /// A yes/no field (`true`/`false`, also as text).
    pub fn flag(&self, name: &str) -> ApiResult<bool> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.trim() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" | "" => Ok(false),
                _ => Err(ApiError::bad_request(
                    "bad_field",
                    format!("`{name}` must be true or false, got `{s}`"),
                )),
            },
            Some(other) => Err(ApiError::bad_request(
                "bad_field",
                format!("`{name}` must be true or false, got {other}"),
            )),
        }
    }
}

fn decode_base64(field: &str, text: &str) -> ApiResult<Vec<u8>> {
    let data = match text.find(";base64,") {
        Some(i) if text.starts_with("data:") => &text[i + 8..],
        _ => text,
    };
    let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| {
            ApiError::bad_request("bad_base64", format!("`{field}` is not valid base64 ({e})"))
        })
}
