//! Writing one output and reading it back: a GPIO line (through the GPIO backend
//! trait, so the fake serves the tests) or a coil of a Modbus TCP module.
//!
//! Every write is followed by a read of the same output; [`Port::set`] returns the
//! state read back, and the caller compares. A link that fails is dropped and opened
//! again on the next write, so a module that was power-cycled is driven again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_modbus::client::{Context, Reader, Writer};

use super::config::Driver;
use crate::sources::gpio::backend::{Backend, OutputLine};

/// Why an output could not be written or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The GPIO line could not be requested, set or read.
    #[error("GPIO: {0}")]
    Gpio(String),
    /// The module could not be reached or did not answer in time.
    #[error("Modbus {addr}: {reason}")]
    Link {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The module answered with an exception.
    #[error("Modbus {addr} unit {unit} coil {coil}: exception {code}")]
    Exception {
        /// `host:port`.
        addr: String,
        /// Unit id.
        unit: u8,
        /// Coil address.
        coil: u16,
        /// The exception.
        code: String,
    },
}

/// A future returned by [`Port::set`].
pub type SetFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, Error>> + Send + 'a>>;

/// One output.
pub trait Port: Send {
    /// Set the output on or off, then read it back: the state it holds.
    fn set(&mut self, on: bool) -> SetFuture<'_>;
}

/// Build the port of a driver. GPIO lines come from `gpio` (the kernel's backend, or
/// the fake in tests).
pub fn open(id: &str, driver: &Driver, gpio: Arc<dyn Backend>) -> Box<dyn Port> {
    match driver {
        Driver::Gpio(spec) => Box::new(GpioPort {
            consumer: format!("dc-gateway:{id}"),
            spec: spec.clone(),
            backend: gpio,
            line: None,
        }),
        Driver::Coil {
            addr,
            unit,
            coil,
            timeout,
        } => Box::new(CoilPort {
            addr: addr.clone(),
            unit: *unit,
            coil: *coil,
            timeout: *timeout,
            ctx: None,
        }),
    }
}

struct GpioPort {
    consumer: String,
    spec: crate::sources::gpio::LineSpec,
    backend: Arc<dyn Backend>,
    line: Option<Box<dyn OutputLine>>,
}

impl Port for GpioPort {
    fn set(&mut self, on: bool) -> SetFuture<'_> {
        Box::pin(async move {
            let r = (|| {
                match &mut self.line {
                    Some(l) => l.set(on)?,
                    None => {
                        self.line = Some(self.backend.request_output(
                            &self.consumer,
                            &self.spec,
                            on,
                        )?)
                    }
                }
                self.line.as_mut().map_or(Ok(on), |l| l.get())
            })();
            if r.is_err() {
                // Request the line again next time (a chip that came back).
                self.line = None;
            }
            r.map_err(|e| Error::Gpio(e.to_string()))
        })
    }
}

struct CoilPort {
    addr: String,
    unit: u8,
    coil: u16,
    timeout: Duration,
    ctx: Option<Context>,
}

impl CoilPort {
    fn link(&self, reason: impl ToString) -> Error {
        Error::Link {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    fn exception(&self, code: impl std::fmt::Debug) -> Error {
        Error::Exception {
            addr: self.addr.clone(),
            unit: self.unit,
            coil: self.coil,
            code: format!("{code:?}"),
        }
    }

    async fn write_read(&mut self, on: bool) -> Result<bool, Error> {
        let t = self.timeout;
        if self.ctx.is_none() {
            let addr = tokio::time::timeout(t, tokio::net::lookup_host(&self.addr))
                .await
                .map_err(|_| self.link("name lookup timed out"))?
                .map_err(|e| self.link(e))?
                .next()
                .ok_or_else(|| self.link("no address"))?;
            let ctx = tokio::time::timeout(
                t,
                tokio_modbus::client::tcp::connect_slave(addr, tokio_modbus::Slave(self.unit)),
            )
            .await
            .map_err(|_| self.link("connect timed out"))?
            .map_err(|e| self.link(e))?;
            self.ctx = Some(ctx);
        }
        let coil = self.coil;
        let ctx = self.ctx.as_mut().ok_or_else(|| Error::Link {
            addr: String::new(),
            reason: "no connection".into(),
        })?;
        let w = tokio::time::timeout(t, ctx.write_single_coil(coil, on)).await;
        match w {
            Err(_) => return Err(self.link("write timed out")),
            Ok(Err(e)) => return Err(self.link(e)),
            Ok(Ok(Err(code))) => return Err(self.exception(code)),
            Ok(Ok(Ok(()))) => {}
        }
        let ctx = self.ctx.as_mut().ok_or_else(|| Error::Link {
            addr: String::new(),
            reason: "no connection".into(),
        })?;
        let r = tokio::time::timeout(t, ctx.read_coils(coil, 1)).await;
        match r {
            Err(_) => Err(self.link("read-back timed out")),
            Ok(Err(e)) => Err(self.link(e)),
            Ok(Ok(Err(code))) => Err(self.exception(code)),
            Ok(Ok(Ok(v))) => v
                .first()
                .copied()
                .ok_or_else(|| self.link("empty read-back")),
        }
    }
}

impl Port for CoilPort {
    fn set(&mut self, on: bool) -> SetFuture<'_> {
        Box::pin(async move {
            let r = self.write_read(on).await;
            if matches!(r, Err(Error::Link { .. })) {
                // A late reply must never answer the next request: a new connection.
                self.ctx = None;
            }
            r
        })
    }
}
