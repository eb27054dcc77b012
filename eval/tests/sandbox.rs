//! Hostile code against the Python sandbox (issue 3 item 7): every case ends in a recorded
//! outcome within the limits, and nothing escapes the temp dir.

use std::time::Duration;

use dsmath_eval::sandbox::{Outcome, Sandbox, SandboxConfig, last_python_block};

fn sandbox() -> Sandbox {
    let cfg = SandboxConfig {
        timeout: Duration::from_secs(3),
        cpu_seconds: 5,
        memory_bytes: 512 << 20,
        output_bytes: 4096,
        ..Default::default()
    };
    Sandbox::new(cfg).expect("python3 must be installed for the sandbox tests")
}

#[test]
fn runs_ordinary_code_and_reports_output() {
    let sb = sandbox();
    let r = sb.run("from fractions import Fraction\nprint(Fraction(1, 3) + Fraction(1, 6))");
    assert_eq!(r.outcome, Outcome::Ok, "{}", r.stderr);
    assert_eq!(r.feedback(), "1/2");
    // Files in the temp dir work.
    let r = sb.run("open('a.txt','w').write('hi')\nprint(open('a.txt').read())");
    assert_eq!(
        (r.outcome, r.stdout.trim()),
        (Outcome::Ok, "hi"),
        "{}",
        r.stderr
    );
}

#[test]
fn exceptions_become_the_last_traceback_line() {
    let r = sandbox().run("x = 1\nprint(y)");
    assert_eq!(r.outcome, Outcome::Error { code: 1 });
    assert_eq!(r.feedback(), "NameError: name 'y' is not defined");
}

#[test]
fn infinite_loop_and_sleep_hit_the_wall_clock_timeout() {
    let sb = sandbox();
    for code in ["while True:\n    pass", "import time\ntime.sleep(60)"] {
        let r = sb.run(code);
        assert_eq!(r.outcome, Outcome::Timeout, "{code}");
        assert!(r.seconds < 6.0, "{code}: took {}s", r.seconds);
    }
}

#[test]
fn huge_allocation_fails_inside_the_process() {
    let r = sandbox().run("x = bytearray(8 * 1024**3)\nprint(len(x))");
    assert_eq!(r.outcome, Outcome::Error { code: 1 });
    assert!(r.feedback().contains("MemoryError"), "{}", r.stderr);
}

#[test]
fn output_flood_is_capped() {
    let r = sandbox().run("while True:\n    print('x' * 1000)");
    assert_eq!(r.outcome, Outcome::OutputLimit);
    assert_eq!(r.stdout.len(), 4096);
}

#[test]
fn environment_is_empty() {
    // SAFETY: test-local variable; the sandbox is spawned after.
    unsafe { std::env::set_var("DSMATH_SECRET_TOKEN", "hunter2") };
    let r = sandbox().run("import os\nprint(sorted(k for k in os.environ if k != 'LC_CTYPE'))");
    assert_eq!(
        (r.outcome, r.stdout.trim()),
        (Outcome::Ok, "[]"),
        "{}",
        r.stderr
    );
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;

    #[test]
    fn fork_bomb_and_subprocesses_are_refused() {
        let sb = sandbox();
        let r = sb.run("import os\nwhile True:\n    os.fork()");
        assert_eq!(r.outcome, Outcome::Error { code: 1 });
        assert!(r.feedback().contains("PermissionError"), "{}", r.stderr);
        let r = sb.run(
            "import subprocess\nprint(subprocess.run(['ls', '/'], capture_output=True).stdout)",
        );
        assert!(
            matches!(r.outcome, Outcome::Error { .. }),
            "{:?} {}",
            r.outcome,
            r.stdout
        );
        let r = sb.run("import os\nprint(os.system('echo escaped'))");
        assert!(!r.stdout.contains("escaped"), "{}", r.stdout);
        let r = sb.run("import threading\nthreading.Thread(target=print).start()");
        assert!(
            matches!(r.outcome, Outcome::Error { .. }),
            "{:?}",
            r.outcome
        );
    }

    #[test]
    fn files_outside_the_temp_dir_cannot_be_read_or_written() {
        let secret = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret.path(), "top secret").unwrap();
        let sb = sandbox();
        for path in [
            secret.path().to_str().unwrap(),
            "/etc/passwd",
            env!("CARGO_MANIFEST_DIR"),
        ] {
            let r = sb.run(&format!("import os\np = {path:?}\nprint(open(p).read() if os.path.isfile(p) else os.listdir(p))"));
            assert_eq!(
                r.outcome,
                Outcome::Error { code: 1 },
                "{path}: {}",
                r.stdout
            );
            assert!(
                r.feedback().contains("PermissionError"),
                "{path}: {}",
                r.stderr
            );
        }
        let target = std::env::temp_dir().join("dsmath-sandbox-escape.txt");
        let r = sb.run(&format!(
            "open({:?}, 'w').write('x')",
            target.to_str().unwrap()
        ));
        assert_eq!(r.outcome, Outcome::Error { code: 1 });
        assert!(!target.exists());
    }

    #[test]
    fn sockets_are_refused() {
        // A listener the sandboxed code would try to reach.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sb = sandbox();
        let r = sb.run(&format!("import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')"));
        assert_eq!(r.outcome, Outcome::Error { code: 1 });
        assert!(r.feedback().contains("PermissionError"), "{}", r.stderr);
        let r = sb.run("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53))");
        assert_eq!(r.outcome, Outcome::Error { code: 1 });
        assert!(
            sb.enforced().iter().any(|e| e.contains("seccomp")),
            "{:?}",
            sb.enforced()
        );
    }
}

#[test]
fn last_python_block_takes_the_last_closed_block() {
    let t = "```python\nprint(1)\n```\n```output\n1\n```\n```python\nx = 2\nprint(x)\n```";
    assert_eq!(last_python_block(t).as_deref(), Some("x = 2\nprint(x)"));
    assert_eq!(last_python_block("```python\nprint(1)"), None);
}
