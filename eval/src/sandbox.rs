//! Sandboxed Python for program-of-thought and tool-integrated solving (DeepSeekMath §2.2, ToRA):
//! model code runs in a separate `python3 -I -B` process, in a fresh temp dir, with an empty
//! environment, a wall-clock timeout, CPU / memory / file-size / open-file rlimits and an output
//! cap; on Linux also landlock (read only the Python install and system libraries, write only the
//! temp dir, no TCP) and seccomp (no fork, clone, socket, io_uring, ptrace). A crash, timeout or
//! refusal is an [`Outcome`], never a hang or a panic of the harness. `Sandbox::enforced` lists
//! what the running machine actually enforces.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("python interpreter `{0}` not usable: {1}")]
    Python(String, String),
    #[error("sandbox setup: {0}")]
    Setup(String),
}

/// Limits for one run.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Interpreter to run (`python3` on PATH by default; `DSMATH_PYTHON` overrides).
    pub python: String,
    pub timeout: Duration,
    pub cpu_seconds: u64,
    pub memory_bytes: u64,
    /// Cap on captured stdout and on stderr, each; more kills the run.
    pub output_bytes: usize,
    /// Largest file the code may write into its temp dir.
    pub file_bytes: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            python: std::env::var("DSMATH_PYTHON").unwrap_or_else(|_| "python3".into()),
            timeout: Duration::from_secs(10),
            cpu_seconds: 10,
            memory_bytes: 1 << 30,
            output_bytes: 64 << 10,
            file_bytes: 16 << 20,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exit status 0.
    Ok,
    /// Non-zero exit (an exception, a refused syscall surfacing as an error...).
    Error { code: i32 },
    /// Killed by a signal (CPU limit, segfault...).
    Signal { signal: i32 },
    /// Wall-clock timeout: the process group was killed.
    Timeout,
    /// Printed more than the output cap: killed.
    OutputLimit,
    /// Could not start (the reason is in `stderr`).
    Failed,
}

/// The result of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

impl Run {
    /// What the model sees in its ```output block: stdout, or the error's last line
    /// (`NameError: ...`) as ToRA feeds it back, or the reason it was stopped.
    pub fn feedback(&self) -> String {
        let out = self.stdout.trim_end();
        match &self.outcome {
            Outcome::Ok => out.to_string(),
            Outcome::Error { .. } => self
                .stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("Error")
                .trim()
                .to_string(),
            Outcome::Timeout => "TimeoutError: execution took too long".into(),
            Outcome::OutputLimit => "Error: output too long".into(),
            Outcome::Signal { signal } => format!("Error: killed by signal {signal}"),
            Outcome::Failed => format!("Error: {}", self.stderr.trim()),
        }
    }
}

/// A reusable sandbox: the resolved interpreter and its install directories.
#[derive(Debug, Clone)]
pub struct Sandbox {
    cfg: SandboxConfig,
    /// Absolute path of the real interpreter (not a pyenv shim).
    python: PathBuf,
    /// Directories the code may read: the interpreter's prefixes and system libraries.
    read_roots: Vec<PathBuf>,
    enforced: Vec<String>,
}

impl Sandbox {
    /// Resolve the interpreter (`sys.executable`, its prefixes) and probe what can be enforced.
    pub fn new(cfg: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let probe = "import sys, json; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))";
        let out = Command::new(&cfg.python)
            .args(["-I", "-c", probe])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| SandboxError::Python(cfg.python.clone(), e.to_string()))?;
        if !out.status.success() {
            return Err(SandboxError::Python(
                cfg.python.clone(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        let paths: Vec<String> = serde_json::from_slice(&out.stdout).map_err(|e| {
            SandboxError::Python(cfg.python.clone(), format!("unexpected probe output: {e}"))
        })?;
        let python = std::fs::canonicalize(&paths[0])
            .map_err(|e| SandboxError::Python(paths[0].clone(), e.to_string()))?;
        let mut read_roots: Vec<PathBuf> = paths[1..].iter().map(PathBuf::from).collect();
        if let Some(dir) = python.parent().and_then(Path::parent) {
            read_roots.push(dir.to_path_buf());
        }
        for sys in [
            "/usr",
            "/lib",
            "/lib64",
            "/lib32",
            "/etc/ld.so.cache",
            "/etc/localtime",
            "/dev/null",
            "/dev/urandom",
        ] {
            read_roots.push(PathBuf::from(sys));
        }
        read_roots.sort();
        read_roots.dedup();
        let mut enforced: Vec<String> = vec![
            "separate python3 process (-I -B: no user site, no env vars)".into(),
            "fresh temp dir as cwd, deleted afterwards".into(),
            "empty environment".into(),
            format!(
                "wall-clock timeout {:.1}s (process group killed)",
                cfg.timeout.as_secs_f64()
            ),
            format!("output cap {} bytes per stream", cfg.output_bytes),
        ];
        if cfg!(unix) {
            enforced.push(format!(
                "rlimits: CPU {}s, address space {} MiB, file size {} MiB, 64 open files, no core dumps",
                cfg.cpu_seconds,
                cfg.memory_bytes >> 20,
                cfg.file_bytes >> 20
            ));
        }
        #[cfg(target_os = "linux")]
        {
            let abi = crate::confine::landlock_abi();
            if abi >= 1 {
                enforced.push(format!("landlock ABI {abi}: read/exec only the Python install and system libraries, read/write only the temp dir"));
            }
            if abi >= 4 {
                enforced.push("landlock: no TCP bind/connect".into());
            }
            if abi >= 6 {
                enforced.push(
                    "landlock: no abstract unix sockets or signals outside the sandbox".into(),
                );
            }
            if !crate::confine::seccomp_program().is_empty() {
                enforced.push("seccomp: fork, vfork, clone, clone3, socket, socketpair, io_uring_setup, ptrace and foreign-ABI syscalls fail with EPERM".into());
            }
        }
        let sb = Sandbox {
            cfg,
            python,
            read_roots,
            enforced,
        };
        let check = sb.run("print(6 * 7)");
        if check.outcome != Outcome::Ok || check.stdout.trim() != "42" {
            return Err(SandboxError::Setup(format!(
                "self-check failed: {:?} {}",
                check.outcome,
                check.stderr.trim()
            )));
        }
        Ok(sb)
    }

    /// What this machine enforces (for reports and the README).
    pub fn enforced(&self) -> &[String] {
        &self.enforced
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.cfg
    }

    /// Run `code` as a script; always returns.
    pub fn run(&self, code: &str) -> Run {
        let start = Instant::now();
        let failed = |msg: String| Run {
            outcome: Outcome::Failed,
            stdout: String::new(),
            stderr: msg,
            seconds: start.elapsed().as_secs_f64(),
        };
        let dir = match tempfile::Builder::new().prefix("dsmath-sandbox-").tempdir() {
            Ok(d) => d,
            Err(e) => return failed(format!("temp dir: {e}")),
        };
        let script = dir.path().join("main.py");
        if let Err(e) = std::fs::write(&script, code) {
            return failed(format!("writing the script: {e}"));
        }
        let mut cmd = Command::new(&self.python);
        cmd.args(["-I", "-B", "main.py"])
            .current_dir(dir.path())
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(target_os = "linux")]
        let ruleset = {
            let roots: Vec<&Path> = self.read_roots.iter().map(PathBuf::as_path).collect();
            match crate::confine::Ruleset::new(&roots, dir.path()) {
                Ok(r) => Some(r),
                Err(_) if crate::confine::landlock_abi() == 0 => None,
                Err(e) => return failed(e),
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            let limits = [
                (libc::RLIMIT_CPU, self.cfg.cpu_seconds),
                (libc::RLIMIT_AS, self.cfg.memory_bytes),
                (libc::RLIMIT_FSIZE, self.cfg.file_bytes),
                (libc::RLIMIT_NOFILE, 64),
                (libc::RLIMIT_CORE, 0),
            ];
            #[cfg(target_os = "linux")]
            let (rs_fd, filter) = (
                ruleset.as_ref().map(|r| r.fd()),
                crate::confine::seccomp_program(),
            );
            // SAFETY: the closure only makes async-signal-safe syscalls (setsid, setrlimit, prctl).
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    for (res, v) in limits {
                        let lim = libc::rlimit {
                            rlim_cur: v as libc::rlim_t,
                            rlim_max: v as libc::rlim_t,
                        };
                        if libc::setrlimit(res, &lim) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    #[cfg(target_os = "linux")]
                    crate::confine::apply_in_child(rs_fd, &filter)?;
                    Ok(())
                });
            }
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return failed(format!("spawn {}: {e}", self.python.display())),
        };
        #[cfg(target_os = "linux")]
        drop(ruleset);
        let cap = self.cfg.output_bytes;
        let reader = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut over = false;
                if let Some(mut p) = pipe {
                    let mut chunk = [0u8; 8192];
                    while let Ok(n) = p.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        if buf.len() + n > cap {
                            buf.extend_from_slice(&chunk[..cap - buf.len()]);
                            over = true;
                            break; // dropping the pipe: the writer gets EPIPE
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                }
                (buf, over)
            })
        };
        let out_t = reader(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err_t = reader(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let deadline = start + self.cfg.timeout;
        let mut pause = Duration::from_millis(1);
        let (status, timed_out) = loop {
            match child.try_wait() {
                Ok(Some(s)) => break (Some(s), false),
                Ok(None) if Instant::now() >= deadline => {
                    kill_group(&mut child);
                    break (child.wait().ok(), true);
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(_) => {
                    kill_group(&mut child);
                    break (child.wait().ok(), false);
                }
            }
        };
        let (out, out_over) = out_t.join().unwrap_or_default();
        let (err, err_over) = err_t.join().unwrap_or_default();
        let outcome = if timed_out {
            Outcome::Timeout
        } else if out_over || err_over {
            Outcome::OutputLimit
        } else {
            match status {
                Some(s) if s.success() => Outcome::Ok,
                Some(s) => match s.code() {
                    Some(code) => Outcome::Error { code },
                    None => Outcome::Signal {
                        signal: signal_of(&s),
                    },
                },
                None => Outcome::Failed,
            }
        };
        Run {
            outcome,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            seconds: start.elapsed().as_secs_f64(),
        }
    }
}

#[cfg(unix)]
fn signal_of(s: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.signal().unwrap_or(0)
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> i32 {
    0
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    // SAFETY: the child called setsid, so its pid is its process group id.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.kill();
}

/// The code of the last complete ```python block of `text`, if any.
pub fn last_python_block(text: &str) -> Option<String> {
    let start = text.rfind("```python")?;
    let body = &text[start + "```python".len()..];
    let end = body.find("```")?;
    Some(body[..end].trim_matches('\n').to_string())
}
