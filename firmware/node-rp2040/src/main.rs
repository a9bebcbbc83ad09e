//! The rack-inlet sensor node on an RP2040 (embassy): the pins, UART, I2C and flash
//! around `node_core`, which does all the protocol and sensor work.
//!
//! Wiring (firmware/README.md "Wiring"):
//!
//! | RP2040 pin | Function |
//! |---|---|
//! | GP0 (UART0 TX) | MAX3485 DI |
//! | GP1 (UART0 RX) | MAX3485 RO |
//! | GP2 | MAX3485 DE and /RE tied together (high = transmit); leave unconnected on an auto-direction module |
//! | GP4 (I2C0 SDA), GP5 (I2C0 SCL) | SHT3x/SHT4x, 3.3 V, 4.7 kΩ pull-ups on the sensor board |
//! | GP14 | leak rope relay / sense contact to GND (closed = water), internal pull-up |
//! | GP15 | door reed contact to GND (closed = door shut), internal pull-up |
//!
//! Two loops run concurrently on one executor ([`embassy_futures::join`]):
//!
//! - the **bus loop** reads the UART, cuts frames by the 3.5-character silence
//!   ([`node_core::rtu::Receiver`]), serves them ([`node_core::node::Node`]), drives DE
//!   around each reply, feeds the watchdog; after a reply that changed the unit id,
//!   baud rate or parity it resets the chip, which comes back with the stored settings;
//! - the **input loop** measures the SHT sensor every 2 s (probing SHT4x, then SHT3x,
//!   while none answers) and samples leak and door every 10 ms through the debouncers;
//!   it hands results to the bus loop through `Signal`s.
//!
//! Frame timing: the UART's 32-byte FIFO is switched off (character mode), so every
//! byte raises its own interrupt and is timestamped when it arrives; with the FIFO on,
//! bytes arrive in bursts up to 28 characters late and a 3.5-character gap could not
//! be seen. At 115200 baud that is about 11 500 interrupts a second, well within the
//! RP2040's budget.
//!
//! Settings: one record in the last 4 KiB flash sector (kept out of the program's
//! region by `memory.x`), erased and rewritten on each stored change (about 50 ms, so
//! the reply to a settings write comes that much later).

#![no_std]
#![no_main]

use embassy_futures::join::join;
use embassy_rp::flash::{Blocking, ERASE_SIZE, Flash};
use embassy_rp::gpio::{Input, Level, Output, Pull};
use embassy_rp::i2c::{self, I2c};
use embassy_rp::peripherals::{FLASH, UART0};
use embassy_rp::uart::{self, BufferedInterruptHandler, BufferedUart};
use embassy_rp::watchdog::Watchdog;
use embassy_rp::{bind_interrupts, pac};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Instant, Timer, with_deadline};
use embedded_io_async::{Read, Write};
use static_cell::StaticCell;

use node_core::debounce::Debounced;
use node_core::node::{Handled, Node};
use node_core::rtu::Receiver;
use node_core::settings::{Parity, RECORD_LEN, Settings, SettingsStore};
use node_core::sht::{self, Measurement, Model, Sht};

bind_interrupts!(struct Irqs {
    UART0_IRQ => BufferedInterruptHandler<UART0>;
});

/// Total flash on the board.
const FLASH_SIZE: usize = 2 * 1024 * 1024;
/// The settings sector: the last 4 KiB of the flash.
const SETTINGS_OFFSET: u32 = (FLASH_SIZE - ERASE_SIZE) as u32;
/// Sensor measurement period.
const MEASURE_EVERY: Duration = Duration::from_secs(2);
/// Leak / door sampling period and debounce time.
const INPUT_EVERY: Duration = Duration::from_millis(10);
const DEBOUNCE_MS: u64 = 50;
/// Watchdog: the bus loop wakes at least every 100 ms and feeds it.
const WATCHDOG: Duration = Duration::from_secs(2);

/// Sensor results for the bus loop: the fitted model (if any) and the reading.
static CLIMATE: Signal<CriticalSectionRawMutex, (Option<Model>, Result<Measurement, ()>)> =
    Signal::new();
static LEAK: Signal<CriticalSectionRawMutex, bool> = Signal::new();
static DOOR: Signal<CriticalSectionRawMutex, bool> = Signal::new();

/// The settings record in the last flash sector.
struct FlashStore {
    flash: Flash<'static, FLASH, Blocking, FLASH_SIZE>,
}

impl SettingsStore for FlashStore {
    type Error = embassy_rp::flash::Error;

    fn load(&mut self, buf: &mut [u8; RECORD_LEN]) -> bool {
        self.flash.blocking_read(SETTINGS_OFFSET, buf).is_ok()
    }

    fn save(&mut self, record: &[u8; RECORD_LEN]) -> Result<(), Self::Error> {
        self.flash
            .blocking_erase(SETTINGS_OFFSET, SETTINGS_OFFSET + ERASE_SIZE as u32)?;
        self.flash.blocking_write(SETTINGS_OFFSET, record)?;
        // Read back: a record that did not program correctly is an error (exception
        // 04), not a silent surprise at the next boot.
        let mut check = [0u8; RECORD_LEN];
        self.flash.blocking_read(SETTINGS_OFFSET, &mut check)?;
        if &check != record {
            return Err(embassy_rp::flash::Error::Other);
        }
        Ok(())
    }
}

fn uart_config(s: &Settings) -> uart::Config {
    let mut c = uart::Config::default();
    c.baudrate = s.baud;
    let (parity, stop) = match s.parity {
        Parity::None1 => (uart::Parity::ParityNone, uart::StopBits::STOP1),
        Parity::Even => (uart::Parity::ParityEven, uart::StopBits::STOP1),
        Parity::Odd => (uart::Parity::ParityOdd, uart::StopBits::STOP1),
        Parity::None2 => (uart::Parity::ParityNone, uart::StopBits::STOP2),
    };
    c.parity = parity;
    c.stop_bits = stop;
    c
}

fn micros() -> u64 {
    Instant::now().as_micros()
}

#[embassy_executor::main]
async fn main(_spawner: embassy_executor::Spawner) {
    let p = embassy_rp::init(Default::default());
    let mut watchdog = Watchdog::new(p.WATCHDOG);
    watchdog.start(WATCHDOG);

    let store = FlashStore {
        flash: Flash::new_blocking(p.FLASH),
    };
    let mut node = Node::new(store, Settings::default());
    let settings = *node.settings();

    static TX_BUF: StaticCell<[u8; 256]> = StaticCell::new();
    static RX_BUF: StaticCell<[u8; 256]> = StaticCell::new();
    let mut uart = BufferedUart::new(
        p.UART0,
        p.PIN_0,
        p.PIN_1,
        Irqs,
        TX_BUF.init([0; 256]),
        RX_BUF.init([0; 256]),
        uart_config(&settings),
    );
    // Character mode: one interrupt, and one timestamp, per received byte.
    pac::UART0.uartlcr_h().modify(|w| w.set_fen(false));
    let mut de = Output::new(p.PIN_2, Level::Low);

    let mut i2c_config = i2c::Config::default();
    i2c_config.frequency = 100_000;
    let bus = I2c::new_blocking(p.I2C0, p.PIN_5, p.PIN_4, i2c_config);
    let leak_pin = Input::new(p.PIN_14, Pull::Up);
    let door_pin = Input::new(p.PIN_15, Pull::Up);

    let bus_loop = async {
        let mut rx = Receiver::new(settings.baud);
        let mut buf = [0u8; 64];
        let mut out = [0u8; 256];
        loop {
            watchdog.feed(WATCHDOG);
            if let Some((model, reading)) = CLIMATE.try_take() {
                node.set_climate(model, reading);
            }
            if let Some(v) = LEAK.try_take() {
                node.set_leak(v);
            }
            if let Some(v) = DOOR.try_take() {
                node.set_door(v);
            }
            node.tick(micros() / 1000);

            let wake = match rx.deadline_us() {
                Some(d) => Instant::from_micros(d),
                None => Instant::now() + Duration::from_millis(100),
            };
            let got = with_deadline(wake, uart.read(&mut buf)).await;
            let now = micros();
            if let Some(frame) = rx.poll(now) {
                if let Handled::Reply(n) = node.handle(frame, now / 1000, &mut out) {
                    de.set_high();
                    let _ = uart.write_all(&out[..n]).await;
                    let _ = uart.flush().await;
                    // The last character is still in the shift register.
                    while uart.busy() {}
                    de.set_low();
                }
                if node.line_changed() {
                    // New unit id / line settings are stored: restart with them.
                    cortex_m::peripheral::SCB::sys_reset();
                }
            }
            match got {
                Ok(Ok(n)) => {
                    for b in &buf[..n] {
                        rx.push(*b, now);
                    }
                }
                // Parity, framing, break or overrun: the frame in progress is damaged;
                // a garbage byte makes its CRC fail, which the node counts.
                Ok(Err(_)) => rx.push(0xFF, now),
                Err(_timeout) => {}
            }
        }
    };

    let input_loop = async {
        let mut sensor = Sht::new(bus, Model::Sht4x, sht::DEFAULT_ADDRESS);
        let mut fitted: Option<Model> = None;
        let mut leak = Debounced::new(leak_pin.is_low(), DEBOUNCE_MS);
        let mut door = Debounced::new(door_pin.is_high(), DEBOUNCE_MS);
        LEAK.signal(leak.state());
        DOOR.signal(door.state());
        let mut next_measure = Instant::now();
        loop {
            let ms = Instant::now().as_millis();
            // Leak rope: contact closed to GND = water. Reed: closed = door shut.
            if let Some(v) = leak.update(leak_pin.is_low(), ms) {
                LEAK.signal(v);
            }
            if let Some(v) = door.update(door_pin.is_high(), ms) {
                DOOR.signal(v);
            }
            if Instant::now() >= next_measure {
                next_measure += MEASURE_EVERY;
                let candidates: &[Model] = match fitted {
                    Some(m) => &[m],
                    None => &[Model::Sht4x, Model::Sht3x],
                };
                let mut result = (None, Err(()));
                for &m in candidates {
                    sensor.set_model(m);
                    if sensor.start().is_err() {
                        continue;
                    }
                    Timer::after_micros(u64::from(m.conversion_us())).await;
                    match sensor.read() {
                        Ok(v) => {
                            result = (Some(m), Ok(v));
                            break;
                        }
                        // It answered: that is the model, the word was damaged.
                        Err(sht::Error::Crc) => {
                            result = (Some(m), Err(()));
                            break;
                        }
                        Err(sht::Error::I2c(_)) => {}
                    }
                }
                fitted = result.0;
                CLIMATE.signal(result);
            }
            Timer::after(INPUT_EVERY).await;
        }
    };

    join(bus_loop, input_loop).await;
}

/// A panic cannot come from `node_core` (it has none on any input); if one comes
/// from elsewhere, restart rather than hang on the bus.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}
