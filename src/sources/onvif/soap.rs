//! The ONVIF wire: one SOAP 1.2 request (`GetRecordingSummary` of the Recording Search
//! service, namespace `http://www.onvif.org/ver10/search/wsdl`) with a WS-Security
//! UsernameToken, and the reading of its reply.
//!
//! Invariants: the password never leaves this module except inside the digest
//! (`PasswordDigest = Base64(SHA-1(nonce + created + password))`, WS-Security
//! UsernameToken Profile 1.0 §3.1, as ONVIF Core Specification §5.9.4 requires); a fresh
//! random nonce per request. A reply is classified as exactly one of: a summary, an
//! authentication refusal (HTTP 401 or a SOAP Fault whose subcode is
//! `ter:NotAuthorized`), another SOAP Fault, or a garbled reply — never a timeout unless
//! the recorder did not answer in time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SecureRandom;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The Recording Search service's WSDL namespace.
pub const TSE: &str = "http://www.onvif.org/ver10/search/wsdl";
/// SOAP action of `GetRecordingSummary`.
pub const ACTION: &str = "http://www.onvif.org/ver10/search/wsdl/GetRecordingSummary";

/// What went wrong asking a recorder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer within the device's timeout.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Connection refused, reset, or another transport failure.
    #[error("HTTP request failed: {0}")]
    Http(String),
    /// The recorder refused the credentials (HTTP 401 or `ter:NotAuthorized`).
    #[error("authentication failed for user {user:?}: {detail}")]
    NotAuthorized {
        /// The configured user name.
        user: String,
        /// What the recorder said.
        detail: String,
    },
    /// A SOAP Fault other than an authentication refusal.
    #[error("SOAP fault {code}: {reason}")]
    Fault {
        /// Code and subcodes, `env:Receiver/ter:ActionNotSupported`.
        code: String,
        /// The fault's reason text.
        reason: String,
    },
    /// The reply is not a `GetRecordingSummaryResponse` this module can read.
    #[error("unreadable reply (HTTP {status}): {detail}")]
    Garbled {
        /// HTTP status of the reply.
        status: u16,
        /// What is wrong with it.
        detail: String,
    },
}

impl Error {
    /// The `dcgw_polls` result label of this failure.
    pub fn result(&self) -> &'static str {
        match self {
            Error::Timeout(_) => "timeout",
            Error::NotAuthorized { .. } => "auth_error",
            Error::Fault { .. } => "device_exception",
            Error::Http(_) | Error::Garbled { .. } => "comm_error",
        }
    }
}

/// A recorder's `RecordingSummary` (ONVIF Recording Search Service Specification,
/// GetRecordingSummary; schema type `tt:RecordingSummary`).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// `DataFrom`: the oldest recorded data of any recording.
    pub data_from: OffsetDateTime,
    /// `DataUntil`: the newest recorded data of any recording.
    pub data_until: OffsetDateTime,
    /// `NumberRecordings`.
    pub recordings: u64,
}

impl Summary {
    /// Days of recordings kept: `DataUntil − DataFrom`, in days (fractional).
    pub fn retention_days(&self) -> f64 {
        (self.data_until - self.data_from).as_seconds_f64() / 86_400.0
    }
}

/// The UsernameToken password digest: `Base64(SHA-1(nonce + created + password))`,
/// with the raw nonce bytes and `created` as written in the header.
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(nonce);
    ctx.update(created.as_bytes());
    ctx.update(password.as_bytes());
    B64.encode(ctx.finish().as_ref())
}

/// The SOAP 1.2 envelope of `GetRecordingSummary` with a UsernameToken header
/// (fresh nonce, `created` = now).
pub fn request(user: &str, password: &str) -> String {
    let mut nonce = [0u8; 16];
    // SystemRandom only fails when the OS has no randomness at all; a zero nonce is
    // then still a valid (if weaker) token.
    let _ = ring::rand::SystemRandom::new().fill(&mut nonce);
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::now_utc());
    let created = now.format(&Rfc3339).unwrap_or_default();
    envelope(user, password, &nonce, &created)
}

/// [`request`] with a given nonce and time (tests).
pub fn envelope(user: &str, password: &str, nonce: &[u8], created: &str) -> String {
    let digest = password_digest(nonce, created, password);
    let nonce = B64.encode(nonce);
    let user = escape(user);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tse="{TSE}"><s:Header><wsse:Security s:mustUnderstand="1" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsse:UsernameToken><wsse:Username>{user}</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest}</wsse:Password><wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{nonce}</wsse:Nonce><wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header><s:Body><tse:GetRecordingSummary/></s:Body></s:Envelope>"#
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Classify a reply: HTTP status and body.
pub fn parse_reply(status: u16, body: &str, user: &str) -> Result<Summary, Error> {
    let garbled = |detail: String| Error::Garbled { status, detail };
    let doc = match roxmltree::Document::parse(body) {
        Ok(d) => d,
        // A 401 often has an HTML or empty body.
        Err(_) if status == 401 => {
            return Err(Error::NotAuthorized {
                user: user.into(),
                detail: "HTTP 401 Unauthorized".into(),
            });
        }
        Err(e) => return Err(garbled(format!("not XML: {e}"))),
    };
    if let Some(fault) = find(doc.root(), "Fault") {
        let code: Vec<String> = fault
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "Value")
            .filter_map(|n| n.text())
            .map(|t| t.trim().to_string())
            .collect();
        let reason = find(fault, "Text")
            .and_then(|n| n.text())
            .unwrap_or("")
            .trim()
            .to_string();
        let code = code.join("/");
        if status == 401 || code.split('/').any(|c| c.ends_with("NotAuthorized")) {
            return Err(Error::NotAuthorized {
                user: user.into(),
                detail: format!("SOAP fault {code}: {reason}"),
            });
        }
        return Err(Error::Fault { code, reason });
    }
    if status == 401 {
        return Err(Error::NotAuthorized {
            user: user.into(),
            detail: "HTTP 401 Unauthorized".into(),
        });
    }
    let summary = find(doc.root(), "Summary")
        .filter(|n| {
            n.parent_element().map(|p| p.tag_name().name()) == Some("GetRecordingSummaryResponse")
        })
        .ok_or_else(|| garbled("no GetRecordingSummaryResponse/Summary in the body".into()))?;
    let text = |name: &str| {
        find(summary, name)
            .and_then(|n| n.text())
            .map(str::trim)
            .ok_or_else(|| garbled(format!("Summary has no {name}")))
    };
    let time = |name: &str| -> Result<OffsetDateTime, Error> {
        let t = text(name)?;
        parse_datetime(t).ok_or_else(|| garbled(format!("{name} {t:?} is not an xs:dateTime")))
    };
    let n = text("NumberRecordings")?;
    Ok(Summary {
        data_from: time("DataFrom")?,
        data_until: time("DataUntil")?,
        recordings: n
            .parse()
            .map_err(|_| garbled(format!("NumberRecordings {n:?} is not a number")))?,
    })
}

fn find<'a, 'i>(parent: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    parent
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// An `xs:dateTime`; one without a zone is taken as UTC (ONVIF devices keep UTC).
pub fn parse_datetime(t: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(t, &Rfc3339)
        .ok()
        .or_else(|| OffsetDateTime::parse(&format!("{t}Z"), &Rfc3339).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WS-Security UsernameToken Profile 1.0 digest, checked against Python's
    /// `base64.b64encode(hashlib.sha1(nonce + created + password).digest())`.
    #[test]
    fn digest_is_sha1_of_nonce_created_password() {
        let d = password_digest(b"0123456789abcdef", "2026-01-01T00:00:00Z", "secret");
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(b"0123456789abcdef2026-01-01T00:00:00Zsecret");
        assert_eq!(d, B64.encode(ctx.finish().as_ref()));
        assert_eq!(d.len(), 28);
        assert_ne!(
            d,
            password_digest(b"0123456789abcdef", "2026-01-01T00:00:00Z", "other")
        );
    }

    #[test]
    fn summary_and_faults_are_told_apart() {
        let ok = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:tse="http://www.onvif.org/ver10/search/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><e:Body><tse:GetRecordingSummaryResponse><tse:Summary><tt:DataFrom>2026-01-01T00:00:00Z</tt:DataFrom><tt:DataUntil>2026-01-30T12:00:00Z</tt:DataUntil><tt:NumberRecordings>4</tt:NumberRecordings></tse:Summary></tse:GetRecordingSummaryResponse></e:Body></e:Envelope>"#;
        let s = parse_reply(200, ok, "admin").unwrap();
        assert_eq!(s.recordings, 4);
        assert!((s.retention_days() - 29.5).abs() < 1e-9);
        let fault = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><e:Body><e:Fault><e:Code><e:Value>e:Sender</e:Value><e:Subcode><e:Value>ter:NotAuthorized</e:Value></e:Subcode></e:Code><e:Reason><e:Text xml:lang="en">Sender not Authorized</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>"#;
        let e = parse_reply(400, fault, "admin").unwrap_err();
        assert_eq!(e.result(), "auth_error", "{e}");
        let other = fault.replace("ter:NotAuthorized", "ter:ActionNotSupported");
        assert_eq!(
            parse_reply(500, &other, "admin").unwrap_err().result(),
            "device_exception"
        );
        assert_eq!(
            parse_reply(401, "", "admin").unwrap_err().result(),
            "auth_error"
        );
        assert_eq!(
            parse_reply(200, "<a/>", "admin").unwrap_err().result(),
            "comm_error"
        );
    }
}
