//! The ONVIF source: camera recorders (NVRs) read through the ONVIF Recording Search
//! service (`GetRecordingSummary`) for Art. 10.7 (recordings kept at least 30 days).
//!
//! A device is `[devices.onvif] url = ".../onvif/search_service", username,
//! password = { file | env }`. Every poll sends one SOAP 1.2 request with a
//! WS-Security UsernameToken ([`soap`]) and yields two points: `retention_days`
//! (`DataUntil − DataFrom`, days) and `recording` (at least one recording and
//! `DataUntil` no older than `recording_max_age_s`). Invariants: every poll ends in
//! [`Health::finish`] with one `Poll` carrying both points; a refused login is
//! `comm_error` quality with the poll result `auth_error` and a log line naming the
//! user, never a timeout; the password is never logged.

pub mod soap;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::health::Health;
use crate::config::raw::RawSecret;
use crate::config::span::{self, ProfileError};
use crate::config::{DeviceConfig, DeviceCtx, Report, Site};
use crate::model::{Device, Kind, Poll, Quality, Sample, Value};
use crate::points::PointId;
use crate::sources::Connection;

/// Default of `recording_max_age_s`.
pub const DEFAULT_MAX_AGE_S: u64 = 300;

/// `[devices.onvif]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnvif {
    /// The recorder's Recording Search service address (its `XAddr` from
    /// `GetServices`), `http://10.0.0.9/onvif/search_service`.
    pub url: Spanned<String>,
    /// The ONVIF user (a user with at least the "operator" or "user" level).
    pub username: Spanned<String>,
    /// Its password: `{ file = "..." }` or `{ env = "..." }`, never inline.
    pub password: Spanned<RawSecret>,
    /// A recorder is `recording` while its newest data (`DataUntil`) is at most this
    /// old, seconds (default 300).
    #[serde(default)]
    pub recording_max_age_s: Option<Spanned<u64>>,
}

/// A recorder's password; prints as `***`.
#[derive(Clone, PartialEq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `[devices.onvif]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct OnvifConnection {
    /// Recording Search service URL.
    pub url: url::Url,
    /// ONVIF user name.
    pub username: String,
    /// Its password.
    pub password: Password,
    /// Newest data older than this → not recording.
    pub max_age: Duration,
}

/// Validate `[devices.onvif]`.
pub(crate) fn connection(
    r: &mut Report<'_>,
    d: &DeviceCtx<'_>,
    raw: &Spanned<RawOnvif>,
    base: &Path,
) -> Option<Connection> {
    let before = r.problems.len();
    let c = raw.get_ref();
    let url = match url::Url::parse(c.url.get_ref()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        Ok(_) => {
            r.at(
                c.url.span(),
                d.key("onvif.url"),
                "use an http:// or https:// address with a host",
            );
            None
        }
        Err(e) => {
            r.at(c.url.span(), d.key("onvif.url"), format!("not a URL: {e}"));
            None
        }
    };
    if c.username.get_ref().trim().is_empty() {
        r.at(
            c.username.span(),
            d.key("onvif.username"),
            "empty user name",
        );
    }
    let password = crate::config::read_secret(c.password.get_ref(), base)
        .map_err(|e| r.at(c.password.span(), d.key("onvif.password"), e.to_string()))
        .ok();
    let max_age = c
        .recording_max_age_s
        .as_ref()
        .map(|m| *m.get_ref())
        .unwrap_or(DEFAULT_MAX_AGE_S);
    if max_age == 0 {
        let span = c
            .recording_max_age_s
            .as_ref()
            .map(|m| m.span())
            .unwrap_or(raw.span());
        r.at(
            span,
            d.key("onvif.recording_max_age_s"),
            "must be at least 1",
        );
    }
    if r.problems.len() != before {
        return None;
    }
    Some(Connection::Onvif(OnvifConnection {
        url: url?,
        username: c.username.get_ref().trim().to_string(),
        password: Password(password?),
        max_age: Duration::from_secs(max_age),
    }))
}

/// An ONVIF profile (`protocol = "onvif"`): the points a recorder gives.
#[derive(Debug, Clone)]
pub struct OnvifProfile {
    /// Profile id (`onvif-recorder`).
    pub id: String,
    /// Device kind (`nvr`).
    pub kind: Kind,
    /// The points, from those this source reads (`retention_days`, `recording`).
    pub points: Vec<PointId>,
}

/// The points this source can read.
pub const READS: &[&str] = &["retention_days", "recording"];

/// Parse and validate an ONVIF profile; the first problem with its position.
pub fn parse_profile(text: &str, origin: &str) -> Result<OnvifProfile, ProfileError> {
    let (id, kind, points) = span::parse_point_list(text, origin, |def| {
        if READS.contains(&def.name) {
            Ok(())
        } else {
            Err(format!(
                "point `{}`: ONVIF Recording Search gives only {READS:?}",
                def.name
            ))
        }
    })?;
    Ok(OnvifProfile { id, kind, points })
}

/// The shipped ONVIF profiles: (file name, text).
pub fn shipped_profiles() -> Vec<(&'static str, &'static str)> {
    vec![(
        "onvif-recorder.toml",
        include_str!("../../../config/profiles/onvif-recorder.toml"),
    )]
}

/// A recorder as its task sees it.
#[derive(Debug, Clone)]
pub struct OnvifDevice {
    /// The device.
    pub meta: Device,
    /// How to reach it.
    pub conn: OnvifConnection,
    /// Its points.
    pub profile: Arc<OnvifProfile>,
    /// Poll period.
    pub poll_interval: Duration,
    /// Request timeout.
    pub timeout: Duration,
}

/// The ONVIF devices of a site.
pub fn devices(site: &Site) -> Vec<OnvifDevice> {
    site.devices.iter().filter_map(device).collect()
}

/// A configured device as the ONVIF task sees it (`None` unless it is one).
pub fn device(d: &DeviceConfig) -> Option<OnvifDevice> {
    let Connection::Onvif(conn) = &d.connection else {
        return None;
    };
    let crate::sources::DeviceProfile::Onvif(profile) = &d.profile else {
        return None;
    };
    Some(OnvifDevice {
        meta: d.meta.clone(),
        conn: conn.clone(),
        profile: profile.clone(),
        poll_interval: d.poll_interval,
        timeout: d.timeout,
    })
}

/// Ask the recorder once.
pub async fn read(
    dev: &OnvifDevice,
    client: &reqwest::Client,
) -> Result<soap::Summary, soap::Error> {
    let body = soap::request(&dev.conn.username, &dev.conn.password.0);
    let ct = format!(
        "application/soap+xml; charset=utf-8; action=\"{}\"",
        soap::ACTION
    );
    let send = client
        .post(dev.conn.url.clone())
        .header(reqwest::header::CONTENT_TYPE, ct)
        .body(body)
        .send();
    let fail = |e: reqwest::Error| {
        if e.is_timeout() {
            soap::Error::Timeout(dev.timeout)
        } else {
            soap::Error::Http(e.to_string())
        }
    };
    let resp = tokio::time::timeout(dev.timeout, send)
        .await
        .map_err(|_| soap::Error::Timeout(dev.timeout))?
        .map_err(fail)?;
    let status = resp.status().as_u16();
    let text = tokio::time::timeout(dev.timeout, resp.text())
        .await
        .map_err(|_| soap::Error::Timeout(dev.timeout))?
        .map_err(fail)?;
    soap::parse_reply(status, &text, &dev.conn.username)
}

/// The samples of one poll: both points good from a summary, or both with the
/// failure's quality.
pub fn samples(dev: &OnvifDevice, r: &Result<soap::Summary, soap::Error>) -> Vec<Sample> {
    let now = time::OffsetDateTime::now_utc();
    dev.profile
        .points
        .iter()
        .map(|p| match r {
            Ok(s) => {
                let value = match p.name {
                    "retention_days" => Value::Number(s.retention_days()),
                    _ => Value::Bool(is_recording(s, now, dev.conn.max_age)),
                };
                Sample {
                    point: p,
                    value: Some(value),
                    quality: Quality::Good,
                }
            }
            Err(e) => Sample {
                point: p,
                value: None,
                quality: match e {
                    soap::Error::Timeout(_) => Quality::Timeout,
                    soap::Error::Fault { .. } => Quality::DeviceException,
                    _ => Quality::CommError,
                },
            },
        })
        .collect()
}

/// Whether a recorder records: it has recordings and its newest data is at most
/// `max_age` old at `now`.
pub fn is_recording(s: &soap::Summary, now: time::OffsetDateTime, max_age: Duration) -> bool {
    s.recordings > 0 && (now - s.data_until).as_seconds_f64() <= max_age.as_secs_f64()
}

fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("dc-gateway/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Start polling one recorder `at` after now, every poll interval.
pub fn spawn_at(
    dev: OnvifDevice,
    at: Duration,
    tx: mpsc::Sender<Poll>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(at).await;
        let mut health = Health::new(dev.meta.clone(), "onvif recorder", dev.conn.url.to_string());
        let client = match client(dev.timeout) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(device = %dev.meta.id, error = %e, "onvif recorder: cannot build the HTTP client");
                return;
            }
        };
        let mut tick = tokio::time::interval(dev.poll_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let r = read(&dev, &client).await;
            let samples = samples(&dev, &r);
            let (comm_ok, failure) = match &r {
                Ok(_) => (true, None),
                // The recorder answered: the link is up, the login is wrong.
                Err(e @ (soap::Error::NotAuthorized { .. } | soap::Error::Fault { .. })) => {
                    (true, Some((e.result(), e.to_string())))
                }
                Err(e) => (false, Some((e.result(), e.to_string()))),
            };
            if tx
                .send(health.finish(samples, comm_ok, failure))
                .await
                .is_err()
            {
                return;
            }
        }
    })
}

/// `dc-gateway probe` of a recorder: ask once and print the summary and the points.
pub async fn probe(dev: &OnvifDevice) -> Result<String, crate::sources::Error> {
    let client = client(dev.timeout).map_err(|e| crate::sources::Error::Device {
        device: dev.meta.id.to_string(),
        reason: e.to_string(),
    })?;
    let r = read(dev, &client).await;
    let mut out = format!("{} (onvif {})\n", dev.meta.id, dev.conn.url);
    match &r {
        Ok(s) => out.push_str(&format!(
            "  GetRecordingSummary: DataFrom {} DataUntil {} NumberRecordings {}\n",
            s.data_from, s.data_until, s.recordings
        )),
        Err(e) => {
            return Err(crate::sources::Error::Device {
                device: dev.meta.id.to_string(),
                reason: format!("{} ({})", e, e.result()),
            });
        }
    }
    for s in samples(dev, &r) {
        out.push_str(&format!("  {:<16} {:?}\n", s.point.name, s.value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn recording_needs_recordings_and_recent_data() {
        let now = datetime!(2026-12-05 03:00 UTC);
        let s = |until, n| soap::Summary {
            data_from: datetime!(2026-11-01 00:00 UTC),
            data_until: until,
            recordings: n,
        };
        let age = Duration::from_secs(300);
        assert!(is_recording(
            &s(datetime!(2026-12-05 02:56 UTC), 3),
            now,
            age
        ));
        assert!(!is_recording(
            &s(datetime!(2026-12-05 02:54 UTC), 3),
            now,
            age
        ));
        assert!(!is_recording(&s(now, 0), now, age));
    }

    #[test]
    fn profile_takes_only_what_recording_search_gives() {
        let p = parse_profile(shipped_profiles()[0].1, "onvif-recorder.toml").unwrap();
        assert_eq!(p.kind, Kind::Nvr);
        let names: Vec<&str> = p.points.iter().map(|d| d.name).collect();
        assert_eq!(names, ["retention_days", "recording"]);
        let bad = shipped_profiles()[0]
            .1
            .replace("point = \"recording\"", "point = \"disk_fault\"");
        let e = parse_profile(&bad, "x.toml").unwrap_err();
        assert!(
            e.message.contains("ONVIF Recording Search gives only"),
            "{}",
            e.message
        );
    }
}
