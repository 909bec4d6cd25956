//! One callback as JSON, with what the signature covers kept apart from what it does not.

use serde_json::{Map, Value, json};
use veo3_core::webhook::VerifiedCallback;

/// A JSON rendering of a callback for logs and `veo3 listen`, in two parts:
///
/// * `signed`: what kie's signature covers, `{"taskId", "timestamp"}` (Unix seconds); `null`
///   when the callback was accepted without a signature.
/// * `unsigned`: what the body says and nobody vouches for: `code`, `msg`, `success`,
///   `resultUrls`, and when present `originUrls`, `imageUrls`, `resolution`, `promptJson`
///   (plus `taskId` when nothing is signed). The same fields whichever documented shape the
///   body arrived in. Treat them as hints; a record-info read is the authority.
///
/// ```
/// use veo3_webhook::{Verifier, WebhookKey};
///
/// let key = WebhookKey::new("k")?;
/// let body = br#"{"code":200,"msg":"ok","data":{"task_id":"t1","result_urls":"[\"https://f/4k.mp4\"]"}}"#;
/// let verified = Verifier::new(key.clone()).verify(Some("1000"), Some(&key.sign("t1", "1000")), body, 1000)?;
/// let json = veo3_webhook::to_json(&verified);
/// assert_eq!(json["signed"], serde_json::json!({"taskId": "t1", "timestamp": 1000}));
/// assert_eq!(json["unsigned"]["resultUrls"][0], "https://f/4k.mp4");
///
/// let unsigned = Verifier::unsigned().verify(None, None, body, 0)?;
/// let json = veo3_webhook::to_json(&unsigned);
/// assert!(json["signed"].is_null());
/// assert_eq!(json["unsigned"]["taskId"], "t1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_json(verified: &VerifiedCallback) -> Value {
    let callback = &verified.callback;
    let signed = match verified.signed_at {
        Some(timestamp) if verified.is_authenticated() => {
            json!({"taskId": verified.task_id, "timestamp": timestamp})
        }
        _ => Value::Null,
    };
    let mut unsigned = Map::new();
    if signed.is_null() {
        unsigned.insert("taskId".into(), verified.task_id.clone().into());
    }
    unsigned.insert("code".into(), callback.code.as_i64().into());
    unsigned.insert("msg".into(), callback.msg.clone().into());
    unsigned.insert("success".into(), callback.is_success().into());
    unsigned.insert("resultUrls".into(), callback.result_urls().into());
    let info = callback.info.as_ref();
    let optional = [
        (
            "originUrls",
            info.and_then(|i| i.origin_urls.as_ref())
                .map(|u| Value::from(u.clone())),
        ),
        (
            "imageUrls",
            info.and_then(|i| i.image_urls.as_ref())
                .map(|u| Value::from(u.clone())),
        ),
        (
            "resolution",
            info.and_then(|i| i.resolution.as_ref())
                .map(|r| Value::from(r.as_str())),
        ),
        ("promptJson", callback.prompt_json.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            unsigned.insert(name.to_owned(), value);
        }
    }
    json!({"signed": signed, "unsigned": unsigned})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Verifier, WebhookKey};

    #[test]
    fn the_rendering_is_the_same_for_every_shape_and_keeps_the_unsigned_part_apart() {
        let key = WebhookKey::new("k").expect("key");
        let body = br#"{"code":200,"msg":"Veo3.1 video generated successfully.","data":{"taskId":"t1","info":{"resultUrls":["https://cdn.example.com/t1.mp4"],"originUrls":null,"resolution":"720p"},"fallbackFlag":false}}"#;
        let verified = Verifier::new(key.clone())
            .verify(Some("1000"), Some(&key.sign("t1", "1000")), body, 1000)
            .expect("genuine");
        let json = to_json(&verified);
        assert_eq!(json["signed"], json!({"taskId": "t1", "timestamp": 1000}));
        let unsigned = &json["unsigned"];
        assert_eq!(unsigned["code"], 200);
        assert_eq!(unsigned["success"], true);
        assert_eq!(unsigned["resolution"], "720p");
        assert!(unsigned.get("taskId").is_none(), "the task id is signed");
        assert!(
            unsigned.get("originUrls").is_none(),
            "null originUrls are left out"
        );
        let legacy = Verifier::unsigned()
            .verify(
                None,
                None,
                br#"{"code":501,"msg":"failed","data":{"taskId":"t2","promptJson":"{\"prompt\":\"p\"}"}}"#,
                0,
            )
            .expect("valid");
        let json = to_json(&legacy);
        assert!(json["signed"].is_null());
        assert_eq!(json["unsigned"]["taskId"], "t2");
        assert_eq!(json["unsigned"]["success"], false);
        assert_eq!(json["unsigned"]["resultUrls"], json!([]));
        assert_eq!(json["unsigned"]["promptJson"]["prompt"], "p");
    }
}
