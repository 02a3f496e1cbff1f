//! A real `redis-server` for tests, started on a free port and killed on drop. Tests that
//! need one skip, saying so, where Debian's redis-server is not installed.

// Test support: a server that cannot start is a broken test environment, said loudly.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// A `redis-server` child process, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    /// The CA certificate (PEM) of a TLS-only server.
    tls_ca: Option<PathBuf>,
}

impl RedisServer {
    /// Starts a server with the extra `args`, or `None` (after saying so) without redis-server.
    pub fn start(args: &[&str]) -> Option<Self> {
        if !installed() {
            return None;
        }
        // Several tries: between releasing a probed port and redis-server binding it, another
        // process may take it; redis-server then exits instead of saying it is ready.
        for _ in 0..5 {
            if let Some(server) = Self::try_start(free_port(), args, None) {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts a server that speaks only TLS, with a certificate for `localhost` and
    /// `127.0.0.1` signed by a fresh CA (made with openssl in `dir`); `None` (after saying so)
    /// without redis-server or openssl. [`url`](Self::url) is then `rediss://…` and
    /// [`tls_ca`](Self::tls_ca) the CA to trust.
    pub fn start_tls(dir: &Path, args: &[&str]) -> Option<Self> {
        if !installed() {
            return None;
        }
        make_certificates(dir)?;
        let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let (cert, key, ca) = (file("server.crt"), file("server.key"), file("ca.crt"));
        let mut tls_args = vec![
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ];
        tls_args.extend_from_slice(args);
        for _ in 0..5 {
            if let Some(server) = Self::try_start(free_port(), &tls_args, Some(dir.join("ca.crt")))
            {
                return Some(server);
            }
        }
        panic!("redis-server (tls) did not start on any of 5 free ports");
    }

    /// Starts redis-server on `port` (its TLS port when `tls_ca` is given, plain TCP off) and
    /// waits for its "ready" line: only that proves this process (not another test's server)
    /// listens there.
    fn try_start(port: u16, args: &[&str], tls_ca: Option<PathBuf>) -> Option<Self> {
        let port_args = match tls_ca {
            None => ["--port".to_owned(), port.to_string()],
            Some(_) => ["--port".to_owned(), "0".to_owned()],
        };
        let tls_port: &[String] = match tls_ca {
            None => &[],
            Some(_) => &["--tls-port".to_owned(), port.to_string()],
        };
        let mut child = Command::new("redis-server")
            .args(&port_args)
            .args(tls_port)
            .args(["--bind", "127.0.0.1"])
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
        let server = RedisServer {
            child,
            port,
            tls_ca,
        };
        // Dropping `server` on failure kills the child.
        ready_rx.recv_timeout(Duration::from_secs(10)).ok()?;
        Some(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://localhost:PORT` for a TLS server (the name
    /// its certificate is for).
    pub fn url(&self) -> String {
        match self.tls_ca {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(_) => format!("rediss://localhost:{}", self.port),
        }
    }

    /// The CA certificate (PEM) a client must trust to reach a TLS server.
    pub fn tls_ca(&self) -> Option<Vec<u8>> {
        self.tls_ca.as_ref().map(|p| std::fs::read(p).unwrap())
    }

    /// Kills the server now (as a crashed or unreachable Redis), keeping the value.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// A CA and a server certificate for `localhost` / `127.0.0.1` in `dir` (`ca.crt`,
/// `server.crt`, `server.key`), made with the openssl command; `None` (after saying so)
/// without it.
#[allow(clippy::explicit_write)]
fn make_certificates(dir: &Path) -> Option<()> {
    if Command::new("openssl").arg("version").output().is_err() {
        writeln!(
            std::io::stderr(),
            "SKIPPED redis tls test: openssl not found on PATH (Debian package openssl)"
        )
        .unwrap();
        return None;
    }
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=sluice test ca",
        ],
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(())
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

/// Whether redis-server can be run; says the tests are skipped when not.
fn installed() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        say_skipped();
    }
    found
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
