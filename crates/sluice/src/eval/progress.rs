//! Progress of a long run on stderr: a bar redrawn in place on a terminal, a line every 5%
//! otherwise (logs stay readable).

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    label: String,
    total: usize,
    done: usize,
    started: Instant,
    terminal: bool,
    last_reported: usize,
}

impl Progress {
    pub fn new(label: &str, total: usize) -> Self {
        Self {
            label: label.to_owned(),
            total,
            done: 0,
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            last_reported: 0,
        }
    }

    /// One more item done.
    pub fn step(&mut self) {
        self.done += 1;
        let step = (self.total / 20).max(1);
        if self.terminal {
            eprint!("\r{}", self.line());
            let _ = std::io::stderr().flush();
        } else if self.done - self.last_reported >= step || self.done == self.total {
            self.last_reported = self.done;
            eprintln!("{}", self.line());
        }
    }

    /// End the bar's line.
    pub fn finish(&self) {
        if self.terminal && self.done > 0 {
            eprintln!();
        }
    }

    fn line(&self) -> String {
        let share = self.done as f64 / self.total.max(1) as f64;
        let filled = (share * 30.0).round() as usize;
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = if self.done == 0 {
            0.0
        } else {
            elapsed / self.done as f64 * (self.total - self.done.min(self.total)) as f64
        };
        format!(
            "{}: [{}{}] {}/{} {:>3.0}%  {}s elapsed, ~{}s left ",
            self.label,
            "#".repeat(filled.min(30)),
            ".".repeat(30 - filled.min(30)),
            self.done,
            self.total,
            100.0 * share,
            elapsed.round(),
            left.round()
        )
    }
}
