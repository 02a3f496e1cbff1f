//! A real `redis-server` for tests, started on a free port and killed on drop. Tests that
//! need one skip, saying so, where Debian's redis-server is not installed.

// Test support: a server that cannot start is a broken test environment, said loudly.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// A `redis-server` child process, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts a server with the extra `args`, or `None` (after saying so) without redis-server.
    pub fn start(args: &[&str]) -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            say_skipped();
            return None;
        }
        // Several tries: between releasing a probed port and redis-server binding it, another
        // process may take it; redis-server then exits instead of saying it is ready.
        for _ in 0..5 {
            if let Some(server) = Self::try_start(free_port(), args) {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts redis-server on `port` and waits for its "ready" line: only that proves this
    /// process (not another test's server) listens there.
    fn try_start(port: u16, args: &[&str]) -> Option<Self> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        // Keeps draining the log after "ready", so a full pipe never blocks the server.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = ready_tx.send(());
                }
            }
        });
        let server = RedisServer { child, port };
        // Dropping `server` on failure kills the child.
        ready_rx.recv_timeout(Duration::from_secs(10)).ok()?;
        Some(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends SIGSTOP or SIGCONT: a stopped server accepts connections but never answers.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now and not handed out before in this process: the kernel may return a port
/// just released by another test whose server has not bound it yet.
fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Straight to stderr: the test harness captures `eprintln!` of passing tests, and a skip
/// must be seen.
#[allow(clippy::explicit_write)]
fn say_skipped() {
    writeln!(
        std::io::stderr(),
        "SKIPPED redis tests: redis-server not found on PATH (Debian package redis-server)"
    )
    .unwrap();
}
