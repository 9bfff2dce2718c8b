//! Routes the engine's `log` records to the platform log: logcat on Android, os_log on Apple
//! with the `oslog` feature, stderr elsewhere.

use std::sync::Once;

use log::LevelFilter;

/// How much the engine logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LogLevel> for LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Off => LevelFilter::Off,
            LogLevel::Error => LevelFilter::Error,
            LogLevel::Warn => LevelFilter::Warn,
            LogLevel::Info => LevelFilter::Info,
            LogLevel::Debug => LevelFilter::Debug,
            LogLevel::Trace => LevelFilter::Trace,
        }
    }
}

/// Installs the platform logger on first use and sets the level; callable any number of times.
#[uniffi::export]
pub fn set_log_level(level: LogLevel) {
    static INSTALL: Once = Once::new();
    // The logger passes everything; the global max level is the one filter.
    INSTALL.call_once(install);
    log::set_max_level(level.into());
}

#[cfg(target_os = "android")]
fn install() {
    android_logger::init_once(
        android_logger::Config::default()
            .with_max_level(LevelFilter::Trace)
            .with_tag("hearth"),
    );
}

#[cfg(all(feature = "oslog", any(target_os = "ios", target_os = "macos")))]
fn install() {
    // Fails only if the app installed another `log` logger first; that one then gets the records.
    let _ = oslog::OsLogger::new("dev.hearth")
        .level_filter(LevelFilter::Trace)
        .init();
}

#[cfg(not(any(
    target_os = "android",
    all(feature = "oslog", any(target_os = "ios", target_os = "macos"))
)))]
fn install() {
    // As above: an app's own logger, if installed first, wins.
    let _ = log::set_logger(&StderrLogger);
}

#[cfg(not(any(
    target_os = "android",
    all(feature = "oslog", any(target_os = "ios", target_os = "macos"))
)))]
struct StderrLogger;

#[cfg(not(any(
    target_os = "android",
    all(feature = "oslog", any(target_os = "ios", target_os = "macos"))
)))]
impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        eprintln!("[hearth {} {}] {}", r.level(), r.target(), r.args());
    }
    fn flush(&self) {}
}
