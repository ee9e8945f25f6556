//! Progress on stderr: a bar with rate and time left on a terminal, a plain line every few
//! seconds otherwise (a log file should not fill with redraws); colours only on a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Whether stderr is a terminal that takes colours (`NO_COLOR` turns them off).
fn colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The start of an error line: `error: `, red on a terminal.
pub fn error_prefix() -> &'static str {
    if colours() {
        "\x1b[31merror:\x1b[0m "
    } else {
        "error: "
    }
}

/// `text` in green on a terminal (a verification that passed).
pub fn good(text: &str) -> String {
    if colours() {
        format!("\x1b[32m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// `text` in red on a terminal (a verification that failed).
pub fn bad(text: &str) -> String {
    if colours() {
        format!("\x1b[31m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Progress of one long step, counted in events.
pub struct Progress {
    label: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    drawn: Instant,
    terminal: bool,
}

impl Progress {
    /// Starts a step of `total` events.
    pub fn new(label: &'static str, total: u64) -> Self {
        let now = Instant::now();
        Self {
            label,
            total,
            done: 0,
            started: now,
            drawn: now,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Counts `events` more as done, redrawing now and then.
    pub fn advance(&mut self, events: u64) {
        self.done += events;
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(2)
        };
        if self.drawn.elapsed() >= every {
            self.draw();
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Draws the final state and ends the line.
    pub fn finish(&mut self) {
        self.draw();
        if self.terminal {
            eprintln!();
        }
    }

    fn draw(&mut self) {
        self.drawn = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / seconds;
        let left = if rate > 0.0 {
            let remaining = self.total.saturating_sub(self.done) as f64 / rate;
            clock(Duration::from_secs_f64(remaining))
        } else {
            "?".to_owned()
        };
        let share = if self.total == 0 {
            1.0
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        };
        let counts = format!(
            "{} / {} events  {:.0} events/s  ETA {left}",
            crate::output::count(self.done),
            crate::output::count(self.total),
            rate
        );
        let mut stderr = std::io::stderr().lock();
        // Progress that cannot be shown is not worth failing the copy for.
        let _ = if self.terminal {
            const WIDTH: usize = 30;
            let filled = (share * WIDTH as f64) as usize;
            write!(
                stderr,
                "\r\x1b[2K{} [{}{}] {:>3.0}%  {counts}",
                self.label,
                "#".repeat(filled),
                "-".repeat(WIDTH - filled),
                share * 100.0
            )
        } else {
            writeln!(stderr, "{}: {:.0}%  {counts}", self.label, share * 100.0)
        };
        let _ = stderr.flush();
    }
}

/// A duration as `h:mm:ss` or `m:ss`.
pub fn clock(duration: Duration) -> String {
    let total = duration.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}
