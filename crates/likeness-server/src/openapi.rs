//! `/api/v1/openapi.json`: an OpenAPI 3.1 document of the API.
//!
//! The response schemas are derived from the very types the handlers serialise: each is built
//! from a sample value of the type, serialised with serde, and its JSON shape turned into a
//! schema ([`schema_of`]). A field renamed or added in a response type therefore shows in the
//! document without anyone editing it (a derive crate such as schemars would do the same
//! through every library type, at the price of annotating crates this one does not own).
//! Requests are described by hand: their fields are read by [`crate::input::Form`], not
//! deserialised into one type.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use likeness_face::Detection;
use likeness_face::faces::Verdict;
use likeness_face::report::DetectionOut;
use likeness_gallery::{Candidate, Enrolment, PersonRef, PersonSummary};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::api::{
    AddedFace, CreatedKey, DeletedFace, DetectResponse, FaceEntry, FaceList, FaceOut, GalleryList,
    GalleryName, KeyList, Me, Prediction, RecognizeResponse, RecognizedFace, SubjectList,
    VerifyResponse,
};
use crate::error::ErrorBody;
use crate::keys::{KeyInfo, Scope};
use crate::liveness::{ChallengeOut, ChallengeVerdict, MAX_FRAMES};
use crate::style::{JobState, JobStatus, StyleOptions};
use likeness_face::challenge::{ChallengeResult, Failure};
use likeness_face::liveness::{LIVE_THRESHOLD, LivenessCheck, Verdict as LiveVerdict};

/// The JSON-schema shape of a serialised value (object fields, array items, scalar types).
pub fn schema_of(value: &Value) -> Value {
    match value {
        Value::Null => json!({"type": "null"}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "integer"}),
        Value::Number(_) => json!({"type": "number"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(items) => match items.first() {
            Some(first) => json!({"type": "array", "items": schema_of(first)}),
            None => json!({"type": "array"}),
        },
        Value::Object(map) => {
            let properties: Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), schema_of(v))).collect();
            json!({
                "type": "object",
                "properties": properties,
                "required": map.keys().collect::<Vec<_>>(),
            })
        }
    }
}

fn schema<T: Serialize>(sample: &T) -> Value {
    schema_of(&serde_json::to_value(sample).unwrap_or(Value::Null))
}

/// Takes `field` out of every `required` list of `schema`: for fields a sample shows but a
/// response carries only when asked for (the `liveness` face plugin's).
fn optional(mut schema: Value, field: &str) -> Value {
    fn walk(v: &mut Value, field: &str) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Array(required)) = map.get_mut("required") {
                    required.retain(|r| r != field);
                }
                for (_, child) in map.iter_mut() {
                    walk(child, field);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, field)),
            _ => {}
        }
    }
    walk(&mut schema, field);
    schema
}

fn detection() -> DetectionOut {
    DetectionOut::from(&Detection {
        bbox: [10.5, 20.5, 110.5, 120.5],
        score: 0.98,
        keypoints: [(40.5, 60.5); 6],
    })
}

fn candidate() -> Candidate {
    Candidate {
        id: 1,
        name: "Ada".into(),
        distance: 0.35,
        known: true,
    }
}

fn key_info() -> KeyInfo {
    KeyInfo {
        id: "0a1b2c3d".into(),
        gallery: "office".into(),
        scopes: BTreeSet::from(Scope::ALL),
        label: "front door".into(),
        created: 1_700_000_000,
        revoked: false,
    }
}

fn job_status() -> JobStatus {
    JobStatus {
        id: "00112233aabbccdd".into(),
        state: JobState::Running,
        iteration: 10,
        iterations: 100,
        loss: Some(1.5e6),
        elapsed_s: 3.5,
        error: Some("set when the job failed".into()),
        options: StyleOptions::default(),
    }
}

fn enrolment() -> Enrolment {
    Enrolment {
        id: 1,
        name: "Ada".into(),
        created: true,
        added: 1,
        samples: 1,
        warnings: Vec::new(),
    }
}

/// A face with the liveness plugin's check (the sample shows the optional field).
fn face_out() -> FaceOut {
    FaceOut {
        face: detection(),
        liveness: Some(LivenessCheck {
            bbox: [10.0, 20.0, 110.0, 140.0],
            crop: [0, 0, 270, 300],
            score: 0.97,
            verdict: LiveVerdict::Live,
            threshold: LIVE_THRESHOLD,
            crop_file: None,
        }),
    }
}

/// Every named schema, from samples of the response types.
fn schemas() -> Map<String, Value> {
    let recognized = RecognizedFace {
        face: Some(face_out()),
        subject: "Ada".into(),
        subjects: vec![Prediction {
            candidate: candidate(),
            similarity: 0.94,
        }],
    };
    let mut m = Map::new();
    let mut put = |name: &str, v: Value| {
        m.insert(name.to_string(), v);
    };
    put(
        "Error",
        schema(&ErrorBody {
            code: "bad_image".into(),
            message: "`file` is not an image the service can read".into(),
        }),
    );
    put("Detection", schema(&detection()));
    put(
        "DetectResponse",
        optional(
            schema(&DetectResponse {
                width: 640,
                height: 480,
                result: vec![face_out()],
            }),
            "liveness",
        ),
    );
    put(
        "VerifyResponse",
        optional(
            schema(&VerifyResponse {
                source_face: face_out(),
                target_face: face_out(),
                verdict: Verdict {
                    distance: 0.3,
                    tolerance: 0.6,
                    same: true,
                },
                similarity: 0.95,
            }),
            "liveness",
        ),
    );
    put(
        "RecognizeResponse",
        optional(
            schema(&RecognizeResponse {
                tolerance: 0.6,
                result: vec![recognized],
            }),
            "liveness",
        ),
    );
    put(
        "SubjectList",
        schema(&SubjectList {
            subjects: vec![PersonSummary {
                id: 1,
                name: "Ada".into(),
                samples: vec!["0123456789abcdef".into()],
            }],
        }),
    );
    put(
        "PersonRef",
        schema(&PersonRef {
            id: 1,
            name: "Ada".into(),
        }),
    );
    put(
        "PersonSummary",
        schema(&PersonSummary {
            id: 1,
            name: "Ada".into(),
            samples: vec!["0123456789abcdef".into()],
        }),
    );
    put(
        "AddedFace",
        schema(&AddedFace {
            image_id: "0123456789abcdef".into(),
            subject: "Ada".into(),
            face: detection(),
            enrolment: enrolment(),
        }),
    );
    put(
        "FaceList",
        schema(&FaceList {
            faces: vec![FaceEntry {
                image_id: "0123456789abcdef".into(),
                subject: "Ada".into(),
                subject_id: 1,
            }],
        }),
    );
    put(
        "DeletedFace",
        schema(&DeletedFace {
            image_id: "0123456789abcdef".into(),
            subject: "Ada".into(),
            subject_id: Some(2),
        }),
    );
    put("JobStatus", schema(&job_status()));
    put(
        "Me",
        schema(&Me {
            admin: false,
            key: Some(key_info()),
        }),
    );
    put("KeyInfo", schema(&key_info()));
    put(
        "ChallengeOut",
        schema(&ChallengeOut {
            id: "0123456789abcdef0123456789abcdef".into(),
            instruction: crate::liveness::INSTRUCTION.into(),
            expires: 1_800_000_000,
            max_frames: MAX_FRAMES,
        }),
    );
    put(
        "ChallengeVerdict",
        schema(&ChallengeVerdict {
            result: ChallengeResult {
                passed: false,
                failure: Some(Failure::Planar),
                swing: 0.14,
                planar_residual: 0.02,
                frames: 20,
            },
            reason: crate::liveness::reason(Some(Failure::Planar)).into(),
            frames_without_face: 0,
        }),
    );
    put(
        "CreatedKey",
        schema(&CreatedKey {
            key: "lk_0a1b2c3d_…".into(),
            info: key_info(),
        }),
    );
    put(
        "KeyList",
        schema(&KeyList {
            keys: vec![key_info()],
        }),
    );
    put(
        "GalleryName",
        schema(&GalleryName {
            name: "office".into(),
        }),
    );
    put(
        "GalleryList",
        schema(&GalleryList {
            galleries: vec!["office".into()],
        }),
    );
    m
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn ok(schema: &str, description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": r(schema)}},
    })
}

fn errors() -> Value {
    json!({
        "description": "An error: 400 bad input, 401 no or bad key, 403 scope, 404 unknown \
                        subject/face/job, 409 conflict, 413 body too large, 429 queue full \
                        (Retry-After), 503 timeout or shutting down",
        "content": {"application/json": {"schema": r("Error")}},
    })
}

/// A body of images (multipart or base64 JSON) and option fields.
fn image_body(images: &[&str], options: &[(&str, &str, &str)]) -> Value {
    let mut props = Map::new();
    let mut json_props = Map::new();
    for name in images {
        props.insert(
            name.to_string(),
            json!({"type": "string", "format": "binary"}),
        );
        json_props.insert(
            name.to_string(),
            json!({"type": "string", "contentEncoding": "base64"}),
        );
    }
    for (name, ty, description) in options {
        let s = json!({"type": ty, "description": description});
        props.insert(name.to_string(), s.clone());
        json_props.insert(name.to_string(), s);
    }
    json!({
        "required": true,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": props}},
            "application/json": {"schema": {"type": "object", "properties": json_props}},
        },
    })
}

const FACE_OPTIONS: [(&str, &str, &str); 5] = [
    (
        "limit",
        "integer",
        "at most this many faces, largest first (0: all)",
    ),
    (
        "det_prob_threshold",
        "number",
        "drop detections scoring below this (0-1)",
    ),
    (
        "prediction_count",
        "integer",
        "subjects returned per face (default 1)",
    ),
    (
        "tolerance",
        "number",
        "largest distance still the same person (default 0.6)",
    ),
    (
        "face_plugins",
        "string",
        "comma-separated face plugins (CompreFace's parameter); `liveness`: each face gets \
         `liveness` {score, verdict live|spoof, ...} from the passive MiniFASNet check, and a \
         spoof is never named by recognize (subject `spoof`, no subjects) nor a match for \
         verify. An unknown plugin is a 400.",
    ),
];

fn op(summary: &str, scope: Option<&str>, body: Option<Value>, answer: Value) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {"200": answer, "default": errors()},
    });
    if let Some(scope) = scope {
        o["description"] = json!(format!("Needs a gallery key with scope `{scope}`."));
    }
    if let Some(body) = body {
        o["requestBody"] = body;
    }
    o
}

fn path_param(name: &str) -> Value {
    json!([{"name": name, "in": "path", "required": true, "schema": {"type": "string"}}])
}

/// The whole document.
pub fn build() -> Value {
    let face_body = |images: &[&str]| image_body(images, &FACE_OPTIONS);
    let enrol_body = image_body(
        &["file"],
        &[
            (
                "subject",
                "string",
                "whose face (also accepted in the query)",
            ),
            (
                "insist",
                "boolean",
                "enrol a face that looks unlike the subject's others",
            ),
        ],
    );
    let style_body = image_body(
        &["content", "style"],
        &[
            (
                "size",
                "integer",
                "longest side of the result (16-1024, default 256)",
            ),
            ("iterations", "integer", "optimiser steps (default 100)"),
            ("content_weight", "number", "α"),
            ("style_weight", "number", "β"),
            ("tv_weight", "number", "total-variation weight"),
            ("preserve_colors", "boolean", "keep the content's colours"),
            ("seed", "integer", "random seed"),
            (
                "preview_every",
                "integer",
                "a preview every N steps (0: none)",
            ),
        ],
    );
    let mut subject = json!({
        "put": op("Rename a subject (body {\"subject\": NEW})", Some("manage"), None, ok("PersonRef", "renamed")),
        "delete": op("Remove a subject and all their faces", Some("manage"), None, ok("PersonSummary", "removed")),
    });
    subject["parameters"] = path_param("subject");
    let mut face = json!({
        "delete": op("Remove one face", Some("manage"), None, ok("DeletedFace", "removed")),
    });
    face["parameters"] = path_param("image_id");
    let mut face_img = json!({
        "get": op("The face's aligned 150x150 chip (JPEG)", Some("manage"), None,
                  json!({"description": "JPEG", "content": {"image/jpeg": {}}})),
    });
    face_img["parameters"] = path_param("image_id");
    let mut job = json!({
        "get": op("A style job's status", Some("style"), None, ok("JobStatus", "status")),
        "delete": op("Cancel a style job (stops within one step)", Some("style"), None, ok("JobStatus", "status")),
    });
    job["parameters"] = path_param("id");
    let mut events = json!({
        "get": op("Server-Sent Events: `status` (JobStatus JSON) after every step, `preview` (PNG data URL)", Some("style"), None,
                  json!({"description": "event stream", "content": {"text/event-stream": {}}})),
    });
    events["parameters"] = path_param("id");
    let mut result = json!({
        "get": op("The finished image (PNG); 409 until done", Some("style"), None,
                  json!({"description": "PNG", "content": {"image/png": {}}})),
    });
    result["parameters"] = path_param("id");
    let mut challenge = json!({
        "post": op("Answer a challenge with the frames filmed while the person turned (repeated multipart `frames` files, or JSON {frames: [base64…]}); the server finds the face in each frame and judges the keypoint track: a still or a turned flat picture fails", Some("recognize"), Some(image_body(&["frames"], &[])), ok("ChallengeVerdict", "the judgement")),
    });
    challenge["parameters"] = path_param("id");
    let mut revoke = json!({
        "delete": op("Revoke a key (admin)", None, None, ok("KeyInfo", "revoked")),
    });
    revoke["parameters"] = path_param("id");

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Likeness",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Face detection, verification and recognition against galleries, \
                            and style-transfer jobs. Send the key in `x-api-key`. Images go \
                            as multipart file fields or base64 strings in JSON.",
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/healthz": {"get": op("Liveness of the service (no key)", None, None, json!({"description": "ok"}))},
            "/metrics": {"get": op("Prometheus metrics (no key)", None, None, json!({"description": "text"}))},
            "/api/v1/me": {"get": op("Who the key is", None, None, ok("Me", "the key"))},
            "/api/v1/admin/galleries": {
                "post": op("Create a gallery (admin; body GalleryName)", None, None, ok("GalleryName", "created")),
                "get": op("List galleries (admin)", None, None, ok("GalleryList", "galleries")),
            },
            "/api/v1/admin/keys": {
                "post": op("Create a key for a gallery (admin; body {gallery, scopes, label}); the key is shown once", None, None, ok("CreatedKey", "created")),
                "get": op("List keys (admin)", None, None, ok("KeyList", "keys")),
            },
            "/api/v1/admin/keys/{id}": revoke,
            "/api/v1/detection/detect": {"post": op("Faces of an image: box, score, keypoints; largest first", Some("detect"), Some(face_body(&["file"])), ok("DetectResponse", "faces"))},
            "/api/v1/verification/verify": {"post": op("Are the largest faces of two images the same person?", Some("verify"), Some(face_body(&["source_image", "target_image"])), ok("VerifyResponse", "verdict"))},
            "/api/v1/recognition/recognize": {"post": op("Who is every face of an image", Some("recognize"), Some(face_body(&["file"])), ok("RecognizeResponse", "faces"))},
            "/api/v1/recognition/embeddings/recognize": {"post": op("Who are these embeddings (JSON {embeddings: [[…128…]]})", Some("recognize"), None, ok("RecognizeResponse", "faces"))},
            "/api/v1/recognition/subjects": {
                "post": op("Create a subject from a photo (subject + file)", Some("manage"), Some(enrol_body.clone()), ok("AddedFace", "enrolled")),
                "get": op("List subjects", Some("manage"), None, ok("SubjectList", "subjects")),
            },
            "/api/v1/recognition/subjects/{subject}": subject,
            "/api/v1/recognition/faces": {
                "post": op("Enrol a photo's largest face for a subject", Some("manage"), Some(enrol_body), ok("AddedFace", "enrolled")),
                "get": op("List faces (?subject= to filter)", Some("manage"), None, ok("FaceList", "faces")),
                "delete": op("Remove every face of ?subject=", Some("manage"), None, ok("PersonSummary", "removed")),
            },
            "/api/v1/recognition/faces/{image_id}": face,
            "/api/v1/recognition/faces/{image_id}/img": face_img,
            "/api/v1/liveness/challenge": {"post": op("Start a head-turn challenge (201): an id, the instruction to show, when it expires; one answer per id", Some("recognize"), None, ok("ChallengeOut", "created"))},
            "/api/v1/liveness/challenge/{id}/frames": challenge,
            "/api/v1/style": {"post": op("Start a style-transfer job (202)", Some("style"), Some(style_body), ok("JobStatus", "queued"))},
            "/api/v1/style/{id}": job,
            "/api/v1/style/{id}/events": events,
            "/api/v1/style/{id}/result": result,
        },
    })
}

pub async fn document(State(_): State<Arc<AppState>>) -> Json<Value> {
    Json(build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_follow_the_serialised_types() {
        let doc = build();
        let s = &doc["components"]["schemas"];
        // a renamed or dropped field of the real type would change these
        assert_eq!(s["Detection"]["properties"]["box"]["type"], "array");
        assert_eq!(s["Detection"]["properties"]["score"]["type"], "number");
        assert_eq!(
            s["VerifyResponse"]["properties"]["same"]["type"], "boolean",
            "the verdict is flattened into the response"
        );
        let face = &s["RecognizeResponse"]["properties"]["result"]["items"];
        assert_eq!(face["properties"]["subject"]["type"], "string");
        assert_eq!(
            face["properties"]["subjects"]["items"]["properties"]["similarity"]["type"],
            "number"
        );
        assert_eq!(
            face["properties"]["face"]["properties"]["liveness"]["properties"]["verdict"]["type"],
            "string",
            "the liveness plugin's field is documented"
        );
        assert!(doc["paths"]["/api/v1/liveness/challenge/{id}/frames"]["post"].is_object());
        // present only with face_plugins=liveness
        assert!(
            !face["properties"]["face"]["required"]
                .as_array()
                .unwrap()
                .contains(&json!("liveness"))
        );
        assert!(
            face["properties"]["face"]["required"]
                .as_array()
                .unwrap()
                .contains(&json!("box"))
        );
        assert_eq!(s["Error"]["required"], json!(["code", "message"]));
        // every $ref points at a schema that exists
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(s.get(&name).is_some(), "dangling $ref {name}");
        }
    }
}
