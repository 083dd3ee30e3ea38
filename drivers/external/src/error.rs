//! The error of an invalid message and its reply on the driver's error topic.

use thiserror::Error;

use crate::CONTRACT_VERSION;

/// Why a message breaks the contract: where (a JSON pointer, RFC 6901) and what to do.
///
/// `pointer` names the element that is wrong or missing (`/readings/0/unit`); `""` is the whole
/// message (not JSON, too large, no entries). `message` is one line without health values: it
/// names keys and kinds of values, never the values a driver sent (ids and key names excepted).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid external-driver message at {}: {message}", display_pointer(.pointer))]
pub struct ContractError {
    /// The message's `id` when it had a valid one, so the driver can match the reply.
    pub id: Option<String>,
    /// JSON pointer to the offending element; `""` for the whole message.
    pub pointer: String,
    /// What is wrong and what to do, one line.
    pub message: String,
}

/// The pointer for the one-line message: control characters (and line separators) of keys are
/// escaped, `""` is named.
fn display_pointer(p: &str) -> String {
    if p.is_empty() {
        return "the top level".into();
    }
    p.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

impl ContractError {
    /// An error about the element at `pointer`.
    pub fn new(id: Option<String>, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            id,
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// The error for a driver that the configuration does not allow (`[source.external]
    /// drivers`); for the caller, which knows the list.
    pub fn driver_not_allowed(driver: &str) -> Self {
        Self::new(
            None,
            "",
            format!(
                "driver id \"{driver}\" is not allowed on this gateway; ask its operator to add \
                 it to [source.external] drivers"
            ),
        )
    }

    /// The reply published on `<prefix>/<driver>/error`:
    /// `{"v":1,"id":<id or null>,"error":"…","pointer":"…"}`.
    pub fn reply_json(&self) -> Vec<u8> {
        let reply = serde_json::json!({
            "v": CONTRACT_VERSION,
            "id": self.id,
            "error": self.message,
            "pointer": self.pointer,
        });
        serde_json::to_vec(&reply).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_json_with_id_error_and_pointer() {
        let e = ContractError::new(Some("m-1".into()), "/readings/0/unit", "missing");
        let v: serde_json::Value = serde_json::from_slice(&e.reply_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"v": 1, "id": "m-1", "error": "missing", "pointer": "/readings/0/unit"})
        );
        let e = ContractError::new(None, "", "not JSON");
        let v: serde_json::Value = serde_json::from_slice(&e.reply_json()).unwrap();
        assert_eq!(v["id"], serde_json::Value::Null);
        assert_eq!(
            e.to_string(),
            "invalid external-driver message at the top level: not JSON"
        );
    }
}
