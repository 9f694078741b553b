//! A progress bar on stderr for long publishes and consumes. It is drawn only when stderr is
//! a terminal: piped or redirected output stays plain, so scripts and logs never see escape
//! codes or carriage returns.

use std::fmt;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

const TICK_MS: u64 = 120;

/// A counter of records that may or may not be drawn.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar towards `total` records, or a spinning counter when the total is unknown.
    /// `wanted` lets the caller veto drawing (e.g. when records go to the same terminal).
    pub fn new(verb: &'static str, total: Option<u64>, wanted: bool) -> Progress {
        if !wanted || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
                "{msg} {wide_bar} {human_pos}/{human_len} records ({rate}, {eta} left)",
            ),
            None => (
                ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                "{spinner} {msg} {human_pos} records ({rate}, {elapsed})",
            ),
        };
        // The templates are constants; a bad one would be a bug caught on first use, and
        // the default style is a fine fallback for it.
        if let Ok(style) = ProgressStyle::with_template(template) {
            // indicatif's own {per_sec} shows four decimals of records per second.
            let style =
                style.with_key("rate", |state: &ProgressState, out: &mut dyn fmt::Write| {
                    let _ = write!(out, "{:.0}/s", state.per_sec());
                });
            bar.set_style(style);
        }
        bar.set_message(verb);
        bar.enable_steady_tick(Duration::from_millis(TICK_MS));
        Progress { bar: Some(bar) }
    }

    pub fn add(&self, records: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(records);
        }
    }

    /// Removes the bar so the summary line that follows stands alone.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error path must not leave a half-drawn bar on the terminal.
        self.finish();
    }
}

/// Whether stdout is a terminal (then a bar on the same screen would tangle with records).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
