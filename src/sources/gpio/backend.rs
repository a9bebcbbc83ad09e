//! The small interface between the GPIO source and the kernel: request a set of input
//! lines, read their levels, wait for their edges. The real backend (`kernel.rs`) uses
//! the Linux GPIO character device through `gpiocdev`; the in-process [`super::fake`]
//! backend implements the same trait for tests (a kernel without gpio-sim).
//!
//! Invariants every backend keeps: values are *logical* (active-low already applied:
//! `true` = the line is active = the point's condition is present), one per requested
//! line in request order; an [`Edge`] names the line by its index in the request; edge
//! timestamps are wall-clock (`CLOCK_REALTIME`) nanoseconds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Where a line is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LineAt {
    /// By its name (the device tree's `gpio-line-names`, e.g. `GPIO17` on a Pi).
    Name(String),
    /// By chip (`gpiochip0` or `/dev/gpiochip0`) and offset on it.
    Offset {
        /// Chip name or path.
        chip: String,
        /// Offset on the chip.
        offset: u32,
    },
}

impl std::fmt::Display for LineAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineAt::Name(n) => write!(f, "{n}"),
            LineAt::Offset { chip, offset } => write!(f, "{chip}:{offset}"),
        }
    }
}

/// Pull resistor of an input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Bias {
    /// Leave the line as it is configured (device tree, firmware).
    #[default]
    AsIs,
    /// Internal pull-up.
    PullUp,
    /// Internal pull-down.
    PullDown,
    /// No pull resistor (the input stage drives the line).
    Disabled,
}

/// One input line to request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LineSpec {
    /// Where it is.
    pub at: LineAt,
    /// The line is active when its level is low (an opto-coupler pulling it to ground).
    pub active_low: bool,
    /// Pull resistor.
    pub bias: Bias,
}

/// An edge on one requested line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Index of the line in its request.
    pub line: usize,
    /// Whether the line became active (logical rising edge).
    pub active: bool,
    /// When the kernel saw it: wall-clock nanoseconds since the Unix epoch.
    pub ts_ns: u64,
}

/// Errors of the GPIO interface.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No line of that name on any chip.
    #[error("no GPIO line named {0:?} on any chip")]
    NoSuchLine(String),
    /// The chip could not be opened (missing, or no permission: see docs/GPIO.md).
    #[error("cannot open GPIO chip {chip}: {reason}")]
    Chip {
        /// Chip name or path.
        chip: String,
        /// Why.
        reason: String,
    },
    /// The lines could not be requested (busy: another process holds one).
    #[error("cannot request GPIO lines {lines}: {reason}")]
    Request {
        /// The lines.
        lines: String,
        /// Why.
        reason: String,
    },
    /// A read of the line values or of an edge event failed.
    #[error("GPIO read failed: {0}")]
    Read(String),
    /// The backend stopped delivering edges.
    #[error("GPIO edge events ended")]
    Closed,
}

/// A future returned by [`Lines::next_edge`].
pub type EdgeFuture<'a> = Pin<Box<dyn Future<Output = Result<Edge, Error>> + Send + 'a>>;

/// A GPIO interface: the kernel's, or the fake.
pub trait Backend: Send + Sync + 'static {
    /// Request `lines` as inputs with edge detection on both edges, under the consumer
    /// label `consumer` (shown by `gpioinfo`).
    fn request(&self, consumer: &str, lines: &[LineSpec]) -> Result<Box<dyn Lines>, Error>;
    /// Request one line as an output (a siren's or beacon's relay driver), set to the
    /// logical value `active` at once. `bias` does not apply to outputs.
    fn request_output(
        &self,
        consumer: &str,
        line: &LineSpec,
        active: bool,
    ) -> Result<Box<dyn OutputLine>, Error>;
}

/// A requested output line; released when dropped (the kernel then keeps or drops
/// the level as the chip's driver does: see docs/GPIO.md, "Outputs").
pub trait OutputLine: Send {
    /// Set its logical value (`true`: active).
    fn set(&mut self, active: bool) -> Result<(), Error>;
    /// Read its logical value back.
    fn get(&mut self) -> Result<bool, Error>;
    /// Where it was found (`gpiochip0:20`).
    fn found(&self) -> String;
}

/// Requested lines; released when dropped.
pub trait Lines: Send {
    /// The logical value of every requested line, in request order.
    fn values(&mut self) -> Result<Vec<bool>, Error>;
    /// The next edge on any of the lines (cancel-safe: an edge is never lost by
    /// dropping the future).
    fn next_edge(&mut self) -> EdgeFuture<'_>;
    /// Where each line was found (`gpiochip0:17`), in request order.
    fn found(&self) -> Vec<String>;
}

/// The backend the GPIO source uses: the kernel's, unless [`use_backend`] replaced it.
pub fn current() -> Arc<dyn Backend> {
    let slot = SLOT.lock().unwrap_or_else(|e| e.into_inner());
    match &*slot {
        Some(b) => b.clone(),
        None => super::kernel::backend(),
    }
}

/// Replace the backend for this process (tests and demos: [`super::fake::FakeGpio`]).
/// Sources started afterwards use it.
pub fn use_backend(b: Arc<dyn Backend>) {
    *SLOT.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
}

static SLOT: std::sync::Mutex<Option<Arc<dyn Backend>>> = std::sync::Mutex::new(None);
