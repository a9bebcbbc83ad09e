//! The real GPIO backend: the Linux GPIO character device (`/dev/gpiochipN`, uAPI v2)
//! through `gpiocdev`. Lines named in the config are found by name across every chip,
//! or taken by chip and offset; the lines of one device on one chip are one kernel
//! request (inputs, both edges, wall-clock event timestamps, active-low and bias set
//! in the kernel). One small task per chip request reads its edge events and forwards
//! them, so a device whose lines span chips still waits on one queue.
//!
//! On other systems the backend exists and answers every request with an error, so the
//! gateway builds everywhere; a GPIO device there is reported `comm_error`.

use std::sync::Arc;

use super::backend::Backend;

/// The kernel backend.
pub fn backend() -> Arc<dyn Backend> {
    Arc::new(Kernel)
}

/// The Linux GPIO character device.
pub struct Kernel;

#[cfg(not(target_os = "linux"))]
impl Backend for Kernel {
    fn request(
        &self,
        _consumer: &str,
        _lines: &[super::backend::LineSpec],
    ) -> Result<Box<dyn super::backend::Lines>, super::backend::Error> {
        Err(super::backend::Error::Chip {
            chip: "gpiochip".into(),
            reason: "GPIO character devices exist only on Linux".into(),
        })
    }

    fn request_output(
        &self,
        _consumer: &str,
        _line: &super::backend::LineSpec,
        _active: bool,
    ) -> Result<Box<dyn super::backend::OutputLine>, super::backend::Error> {
        Err(super::backend::Error::Chip {
            chip: "gpiochip".into(),
            reason: "GPIO character devices exist only on Linux".into(),
        })
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::path::PathBuf;
    use std::sync::Arc;

    use gpiocdev::line::{Bias as KBias, EdgeDetection, EdgeKind, EventClock, Value, Values};
    use gpiocdev::tokio::AsyncRequest;
    use tokio::sync::mpsc;

    use super::super::backend::{Backend, Bias, Edge, EdgeFuture, Error, LineAt, LineSpec, Lines};
    use super::Kernel;

    fn chip_path(chip: &str) -> PathBuf {
        if chip.starts_with('/') {
            PathBuf::from(chip)
        } else {
            PathBuf::from("/dev").join(chip)
        }
    }

    /// One kernel request: the lines of a device on one chip.
    struct ChipRequest {
        req: Arc<AsyncRequest>,
        /// (offset, index in the device's request)
        lines: Vec<(u32, usize)>,
        reader: tokio::task::JoinHandle<()>,
    }

    struct KernelLines {
        chips: Vec<ChipRequest>,
        found: Vec<String>,
        rx: mpsc::UnboundedReceiver<Result<Edge, Error>>,
    }

    impl Backend for Kernel {
        fn request_output(
            &self,
            consumer: &str,
            line: &LineSpec,
            active: bool,
        ) -> Result<Box<dyn super::super::backend::OutputLine>, Error> {
            request_output(consumer, line, active)
        }

        fn request(&self, consumer: &str, specs: &[LineSpec]) -> Result<Box<dyn Lines>, Error> {
            // Resolve every line to (chip path, offset).
            let mut at: Vec<(PathBuf, u32)> = Vec::with_capacity(specs.len());
            for s in specs {
                at.push(match &s.at {
                    LineAt::Name(n) => {
                        let f = gpiocdev::find_named_line(n)
                            .ok_or_else(|| Error::NoSuchLine(n.clone()))?;
                        (f.chip, f.info.offset)
                    }
                    LineAt::Offset { chip, offset } => (chip_path(chip), *offset),
                });
            }
            let mut chips: Vec<PathBuf> = Vec::new();
            for (c, _) in &at {
                if !chips.contains(c) {
                    chips.push(c.clone());
                }
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let mut out = Vec::new();
            for chip in chips {
                let mut lines = Vec::new();
                for (i, (c, offset)) in at.iter().enumerate() {
                    if *c == chip {
                        lines.push((*offset, i));
                    }
                }
                // Wall-clock event timestamps need Linux 5.11; an older kernel refuses
                // them, and the request is made again with its default (monotonic)
                // clock, whose timestamps the task then replaces by the time of reading.
                let build = |realtime: bool| {
                    let mut b = gpiocdev::Request::builder();
                    b.on_chip(&chip).with_consumer(consumer);
                    for &(offset, i) in &lines {
                        let s = &specs[i];
                        b.with_line(offset)
                            .as_input()
                            .with_edge_detection(EdgeDetection::BothEdges);
                        if realtime {
                            b.with_event_clock(EventClock::Realtime);
                        }
                        if s.active_low {
                            b.as_active_low();
                        }
                        match s.bias {
                            Bias::AsIs => {}
                            Bias::PullUp => {
                                b.with_bias(KBias::PullUp);
                            }
                            Bias::PullDown => {
                                b.with_bias(KBias::PullDown);
                            }
                            Bias::Disabled => {
                                b.with_bias(KBias::Disabled);
                            }
                        }
                    }
                    b.request()
                };
                let req = build(true)
                    .or_else(|_| build(false))
                    .map_err(|e| Error::Request {
                        lines: format!(
                            "{}:{}",
                            chip.display(),
                            lines
                                .iter()
                                .map(|(o, _)| o.to_string())
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                        reason: e.to_string(),
                    })?;
                let req = Arc::new(AsyncRequest::new(req));
                let reader = {
                    let req = req.clone();
                    let tx = tx.clone();
                    let index: Vec<(u32, usize)> = lines.clone();
                    tokio::spawn(async move {
                        loop {
                            let r = req.read_edge_event().await;
                            let msg = match r {
                                Ok(e) => {
                                    let Some(&(_, i)) = index.iter().find(|(o, _)| *o == e.offset)
                                    else {
                                        continue;
                                    };
                                    Ok(Edge {
                                        line: i,
                                        active: e.kind == EdgeKind::Rising,
                                        ts_ns: e.timestamp_ns,
                                    })
                                }
                                Err(e) => Err(Error::Read(e.to_string())),
                            };
                            let failed = msg.is_err();
                            if tx.send(msg).is_err() || failed {
                                return;
                            }
                        }
                    })
                };
                out.push(ChipRequest { req, lines, reader });
            }
            let found = at
                .iter()
                .map(|(c, o)| {
                    let name = c.file_name().map(|n| n.to_string_lossy().to_string());
                    format!("{}:{o}", name.unwrap_or_default())
                })
                .collect();
            Ok(Box::new(KernelLines {
                chips: out,
                found,
                rx,
            }))
        }
    }

    /// One output line (a siren's relay driver).
    struct KernelOutput {
        req: gpiocdev::Request,
        offset: u32,
        found: String,
    }

    impl super::super::backend::OutputLine for KernelOutput {
        fn set(&mut self, active: bool) -> Result<(), Error> {
            let v = if active {
                Value::Active
            } else {
                Value::Inactive
            };
            self.req
                .set_value(self.offset, v)
                .map_err(|e| Error::Read(e.to_string()))
        }

        fn get(&mut self) -> Result<bool, Error> {
            self.req
                .value(self.offset)
                .map(|v| v == Value::Active)
                .map_err(|e| Error::Read(e.to_string()))
        }

        fn found(&self) -> String {
            self.found.clone()
        }
    }

    pub(super) fn request_output(
        consumer: &str,
        spec: &LineSpec,
        active: bool,
    ) -> Result<Box<dyn super::super::backend::OutputLine>, Error> {
        let (chip, offset) = match &spec.at {
            LineAt::Name(n) => {
                let f = gpiocdev::find_named_line(n).ok_or_else(|| Error::NoSuchLine(n.clone()))?;
                (f.chip, f.info.offset)
            }
            LineAt::Offset { chip, offset } => (chip_path(chip), *offset),
        };
        let mut b = gpiocdev::Request::builder();
        b.on_chip(&chip).with_consumer(consumer).with_line(offset);
        if spec.active_low {
            b.as_active_low();
        }
        b.as_output(if active {
            Value::Active
        } else {
            Value::Inactive
        });
        let req = b.request().map_err(|e| Error::Request {
            lines: format!("{}:{offset}", chip.display()),
            reason: e.to_string(),
        })?;
        let name = chip.file_name().map(|n| n.to_string_lossy().to_string());
        Ok(Box::new(KernelOutput {
            req,
            offset,
            found: format!("{}:{offset}", name.unwrap_or_default()),
        }))
    }

    impl Lines for KernelLines {
        fn values(&mut self) -> Result<Vec<bool>, Error> {
            let n = self.found.len();
            let mut out = vec![false; n];
            for c in &self.chips {
                let offsets: Vec<u32> = c.lines.iter().map(|(o, _)| *o).collect();
                let mut v = Values::from_offsets(&offsets);
                let req: &gpiocdev::Request = c.req.as_ref().as_ref();
                req.values(&mut v).map_err(|e| Error::Read(e.to_string()))?;
                for (o, i) in &c.lines {
                    out[*i] = v.get(*o) == Some(Value::Active);
                }
            }
            Ok(out)
        }

        fn next_edge(&mut self) -> EdgeFuture<'_> {
            Box::pin(async move { self.rx.recv().await.unwrap_or(Err(Error::Closed)) })
        }

        fn found(&self) -> Vec<String> {
            self.found.clone()
        }
    }

    impl Drop for KernelLines {
        fn drop(&mut self) {
            for c in &self.chips {
                c.reader.abort();
            }
        }
    }
}
