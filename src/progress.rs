//! Progress reporting through a trait: bars on a terminal, periodic log lines otherwise, or nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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
            format!("{{prefix:>24}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} {{per_sec}} ETA {{eta}}")
        } else {
            format!("{{prefix:>24}} {{spinner}} {{human_pos}} {unit} {{per_sec}}")
        };
        pb.set_style(ProgressStyle::with_template(&tmpl).expect("valid template").progress_chars("=> "));
        pb.set_prefix(label.to_owned());
        pb.enable_steady_tick(Duration::from_millis(200));
        Box::new(IndicatifBar(pb))
    }
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
            label: label.to_owned(),
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
