//! Progress reporting through a trait: bars on a terminal, periodic log lines otherwise, or nothing.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::escape;

pub trait Progress: Send + Sync {
    /// Starts a bar counting `unit`s towards `total` (when known).
    fn bar(&self, label: &str, total: Option<u64>, unit: &'static str) -> Box<dyn Bar>;
}

pub trait Bar: Send + Sync {
    fn inc(&self, n: u64);
    fn finish(&self);
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Hidden,
    Log,
    Bars,
}

pub fn new(mode: Mode) -> Box<dyn Progress> {
    match mode {
        Mode::Hidden => Box::new(Hidden),
        Mode::Log => Box::new(LogLines { every: Duration::from_secs(5) }),
        Mode::Bars => Box::new(Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))),
    }
}

pub struct Hidden;
struct HiddenBar;

impl Progress for Hidden {
    fn bar(&self, _: &str, _: Option<u64>, _: &'static str) -> Box<dyn Bar> {
        Box::new(HiddenBar)
    }
}
impl Bar for HiddenBar {
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}

struct Bars(MultiProgress);

impl Progress for Bars {
    fn bar(&self, label: &str, total: Option<u64>, unit: &'static str) -> Box<dyn Bar> {
        let pb = self.0.add(total.map_or_else(ProgressBar::new_spinner, ProgressBar::new));
        let tmpl = if total.is_some() {
            format!("{{prefix:>24}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit}, {{rate}}, ETA {{eta}}")
        } else {
            format!("{{prefix:>24}} {{spinner}} {{human_pos}} {unit}, {{rate}}")
        };
        let style = ProgressStyle::with_template(&tmpl).expect("valid template").progress_chars("=> ");
        pb.set_style(style.with_key("rate", rate));
        pb.set_prefix(escape::text(label).into_owned());
        pb.enable_steady_tick(Duration::from_millis(200));
        Box::new(IndicatifBar(pb))
    }
}

/// Whole units per second with thousands separators: `18,556/s`.
fn rate(state: &ProgressState, w: &mut dyn fmt::Write) {
    let _ = write!(w, "{}/s", per_second(state.per_sec()));
}

/// A rate as a person reads it: whole units, thousands separators.
pub fn per_second(rate: f64) -> HumanCount {
    HumanCount(if rate.is_finite() && rate > 0.0 { rate.round() as u64 } else { 0 })
}

struct IndicatifBar(ProgressBar);
impl Bar for IndicatifBar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

struct LogLines {
    every: Duration,
}

impl Progress for LogLines {
    fn bar(&self, label: &str, total: Option<u64>, unit: &'static str) -> Box<dyn Bar> {
        let now = Instant::now();
        Box::new(LogBar {
            label: escape::text(label).into_owned(),
            total,
            unit,
            done: AtomicU64::new(0),
            start: now,
            last: Mutex::new(now),
            every: self.every,
        })
    }
}

struct LogBar {
    label: String,
    total: Option<u64>,
    unit: &'static str,
    done: AtomicU64,
    start: Instant,
    last: Mutex<Instant>,
    every: Duration,
}

impl LogBar {
    fn line(&self) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        match self.total {
            Some(t) if rate > 0.0 => {
                let eta = t.saturating_sub(done) as f64 / rate;
                format!("{}: {done}/{t} {} ({rate:.0}/s, ETA {eta:.0}s)", self.label, self.unit)
            }
            _ => format!("{}: {done} {} ({rate:.0}/s)", self.label, self.unit),
        }
    }
}

impl Bar for LogBar {
    fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        let mut last = self.last.lock().expect("progress lock");
        if last.elapsed() >= self.every {
            *last = Instant::now();
            tracing::info!("{}", self.line());
        }
    }
    fn finish(&self) {
        tracing::info!("{} done in {:.1}s", self.line(), self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_whole_units_with_separators() {
        assert_eq!(per_second(18_556.158_8).to_string(), "18,556");
        assert_eq!(per_second(1_234_567.5).to_string(), "1,234,568");
        assert_eq!(per_second(0.4).to_string(), "0");
        assert_eq!(per_second(f64::NAN).to_string(), "0");
        assert_eq!(per_second(f64::INFINITY).to_string(), "0");
    }
}
