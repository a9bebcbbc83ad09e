//! Derived points: values computed from other points of the same poll.
//!
//! Today one: the dew point of a climate sensor that reports temperature and relative
//! humidity but not the dew point (THRESHOLDS.md: "computed from temperature and RH
//! (Magnus formula) when a sensor does not report it").
//!
//! Invariants: a reported `dew_point_c` (any quality) is never replaced; a derived
//! sample is good only when both inputs are good and inside the formula's range; a bad
//! input gives a dew-point sample with that input's quality, so the API shows *why*
//! there is no dew point.

use crate::model::{Kind, Poll, Quality, Sample, Value};
use crate::points::lookup;

/// Magnus coefficient `b` over water (Alduchov & Eskridge 1996, "Improved Magnus form
/// approximation of saturation vapor pressure", J. Appl. Meteor. 35, 601–609: a = 6.1094
/// hPa, b = 17.625, c = 243.04 °C). Error below 0.4 % in vapour pressure over
/// −40…50 °C.
pub const MAGNUS_B: f64 = 17.625;
/// Magnus coefficient `c`, °C (same source as [`MAGNUS_B`]).
pub const MAGNUS_C: f64 = 243.04;

/// Temperature range (°C) in which the derived dew point is trusted; outside it the
/// sample is `out_of_range`. Alduchov & Eskridge fitted −40…50 °C.
const T_RANGE: (f64, f64) = (-40.0, 60.0);

/// Dew point (°C) from air temperature (°C) and relative humidity (%), Magnus formula:
/// `γ = ln(RH/100) + b·T/(c+T)`, `Td = c·γ/(b−γ)`.
///
/// `None` when the inputs are outside the formula's domain (RH not in (0, 100],
/// temperature outside −40…60 °C, or not finite).
pub fn dew_point_c(temperature_c: f64, humidity_pct: f64) -> Option<f64> {
    if !temperature_c.is_finite()
        || !humidity_pct.is_finite()
        || humidity_pct <= 0.0
        || humidity_pct > 100.0
        || temperature_c < T_RANGE.0
        || temperature_c > T_RANGE.1
    {
        return None;
    }
    let gamma = (humidity_pct / 100.0).ln() + MAGNUS_B * temperature_c / (MAGNUS_C + temperature_c);
    Some(MAGNUS_C * gamma / (MAGNUS_B - gamma))
}

/// Add `dew_point_c` to a climate poll that has `temperature_c` and `humidity_pct` but
/// no `dew_point_c`. Polls of other kinds, or without both inputs, are left alone.
///
/// The value is rounded to 0.01 °C. A bad input quality is carried over (temperature
/// first); inputs outside the formula's domain give `out_of_range`.
pub fn derive(poll: &mut Poll) {
    if poll.device.kind != Kind::Climate {
        return;
    }
    let find = |name: &str| poll.samples.iter().find(|s| s.point.name == name);
    if find("dew_point_c").is_some() {
        return;
    }
    let (Some(t), Some(h)) = (find("temperature_c"), find("humidity_pct")) else {
        return;
    };
    let Some(point) = lookup(Kind::Climate, "dew_point_c") else {
        return;
    };
    let number = |s: &Sample| match s.value {
        Some(Value::Number(v)) => Some(v),
        _ => None,
    };
    let sample = if t.quality != Quality::Good {
        Sample {
            point,
            value: None,
            quality: t.quality,
        }
    } else if h.quality != Quality::Good {
        Sample {
            point,
            value: None,
            quality: h.quality,
        }
    } else {
        match (number(t), number(h)) {
            (Some(tv), Some(hv)) => match dew_point_c(tv, hv) {
                Some(td) => Sample {
                    point,
                    value: Some(Value::Number((td * 100.0).round() / 100.0)),
                    quality: Quality::Good,
                },
                None => Sample {
                    point,
                    value: None,
                    quality: Quality::OutOfRange,
                },
            },
            // A good sample without a number breaks the Sample contract; say so.
            _ => Sample {
                point,
                value: None,
                quality: Quality::Unknown,
            },
        }
    };
    poll.samples.push(sample);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{DeviceMeta, Timestamp};

    fn poll(kind: Kind, samples: &[(&str, Option<f64>, Quality)]) -> Poll {
        let device = Arc::new(DeviceMeta {
            id: Arc::from("th1"),
            name: "th1".into(),
            label: None,
            room: Arc::from("r1"),
            kind,
        });
        Poll {
            device,
            ts: Timestamp(0),
            comm_ok: true,
            samples: samples
                .iter()
                .map(|(n, v, q)| Sample {
                    point: lookup(kind, n).unwrap(),
                    value: v.map(Value::Number),
                    quality: *q,
                })
                .collect(),
        }
    }

    fn dew(p: &Poll) -> Option<&Sample> {
        p.samples.iter().find(|s| s.point.name == "dew_point_c")
    }

    /// Published reference values (Vaisala humidity calculator / NOAA dew point tables,
    /// which use the same Magnus-type fits): the formula must match within 0.1 °C.
    #[test]
    fn dew_point_matches_reference_values() {
        for (t, rh, expected) in [
            (25.0, 50.0, 13.9),
            (20.0, 60.0, 12.0),
            (30.0, 80.0, 26.2),
            (27.0, 60.0, 18.6),
            (0.0, 100.0, 0.0),
            (10.0, 50.0, 0.1),
        ] {
            let td = dew_point_c(t, rh).unwrap();
            assert!(
                (td - expected).abs() <= 0.1,
                "{t} °C / {rh} %: {td:.2}, expected {expected}"
            );
        }
    }

    #[test]
    fn dew_point_domain() {
        assert_eq!(dew_point_c(25.0, 0.0), None);
        assert_eq!(dew_point_c(25.0, 100.5), None);
        assert_eq!(dew_point_c(f64::NAN, 50.0), None);
        assert_eq!(dew_point_c(-50.0, 50.0), None);
        // Saturated air: the dew point is the air temperature.
        assert!((dew_point_c(18.0, 100.0).unwrap() - 18.0).abs() < 1e-9);
    }

    #[test]
    fn derive_adds_a_good_dew_point() {
        let mut p = poll(
            Kind::Climate,
            &[
                ("temperature_c", Some(25.0), Quality::Good),
                ("humidity_pct", Some(50.0), Quality::Good),
            ],
        );
        derive(&mut p);
        let d = dew(&p).expect("dew point added");
        assert_eq!(d.quality, Quality::Good);
        assert_eq!(d.value, Some(Value::Number(13.86)));
    }

    #[test]
    fn derive_carries_bad_quality() {
        let mut p = poll(
            Kind::Climate,
            &[
                ("temperature_c", Some(25.0), Quality::Good),
                ("humidity_pct", None, Quality::Timeout),
            ],
        );
        derive(&mut p);
        let d = dew(&p).unwrap();
        assert_eq!((d.quality, d.value.clone()), (Quality::Timeout, None));

        let mut p = poll(
            Kind::Climate,
            &[
                ("temperature_c", None, Quality::DeviceException),
                ("humidity_pct", None, Quality::Timeout),
            ],
        );
        derive(&mut p);
        assert_eq!(dew(&p).unwrap().quality, Quality::DeviceException);

        let mut p = poll(
            Kind::Climate,
            &[
                ("temperature_c", Some(25.0), Quality::Good),
                ("humidity_pct", Some(0.0), Quality::Good),
            ],
        );
        derive(&mut p);
        assert_eq!(dew(&p).unwrap().quality, Quality::OutOfRange);
    }

    #[test]
    fn derive_keeps_a_reported_dew_point_and_ignores_others() {
        let mut p = poll(
            Kind::Climate,
            &[
                ("temperature_c", Some(25.0), Quality::Good),
                ("humidity_pct", Some(50.0), Quality::Good),
                ("dew_point_c", Some(14.2), Quality::Good),
            ],
        );
        derive(&mut p);
        assert_eq!(p.samples.len(), 3);
        assert_eq!(dew(&p).unwrap().value, Some(Value::Number(14.2)));

        // Only one input: nothing to derive.
        let mut p = poll(
            Kind::Climate,
            &[("temperature_c", Some(25.0), Quality::Good)],
        );
        derive(&mut p);
        assert!(dew(&p).is_none());

        // Not a climate device (cooling has humidity but no dew point point).
        let mut p = poll(
            Kind::Cooling,
            &[("humidity_pct", Some(50.0), Quality::Good)],
        );
        derive(&mut p);
        assert_eq!(p.samples.len(), 1);
    }
}
