//! The runtime against the example modules: results, logs, exits, traps, limits, the
//! compile checks and both caches.

use std::sync::Arc;
use std::time::Duration;

use super::*;

struct Fixture {
    dir: PathBuf,
    rt: WasmRuntime,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("qinling-wasm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = WasmConfig::new(dir.clone());
    cfg.max_instances = 8;
    let rt = WasmRuntime::new(cfg).unwrap();
    Fixture { dir, rt }
}

fn key(package: &str) -> ModuleKey {
    ModuleKey {
        package: package.into(),
        entry: "main.wasm".into(),
    }
}

fn compile(rt: &WasmRuntime, package: &str, wat: &str) -> Arc<Module> {
    rt.compile(&key(package), &wat::parse_str(wat).unwrap())
        .unwrap()
}

fn request(stdin: &str) -> ExecRequest {
    ExecRequest {
        stdin: stdin.as_bytes().to_vec(),
        args: vec!["main.wasm".into()],
        env: vec![],
        memory_bytes: 32 * 1024 * 1024,
        timeout: Duration::from_secs(5),
        cpu_millis: None,
        output_limit: 1024,
    }
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[tokio::test]
async fn ends() {
    let f = fixture("ends");
    // (module, stdin, end, stdout, stderr)
    let cases: &[(&str, &str, End, &str, &str)] = &[
        (
            examples::ECHO,
            r#"{"a": 1}"#,
            End::Exit(0),
            r#"{"a": 1}"#,
            "log: hello from wasm\n",
        ),
        (
            examples::ECHO,
            "",
            End::Exit(0),
            "",
            "log: hello from wasm\n",
        ),
        (examples::HELLO, "", End::Exit(0), "\"Hello, World\"", ""),
        (examples::EXIT, "", End::Exit(3), "bad input", ""),
        (examples::GROW, "", End::MemoryLimit, "", ""),
    ];
    for (i, (wat, stdin, end, stdout, stderr)) in cases.iter().enumerate() {
        let m = compile(&f.rt, &format!("{i:02}"), wat);
        let r = f.rt.execute(&m, request(stdin)).await;
        assert_eq!(
            (&r.end, text(&r.stdout), text(&r.stderr)),
            (end, *stdout, *stderr),
            "case {i}"
        );
    }
}

/// The guest sees the environment it is given (the execution's `TRACEPARENT`), and
/// nothing of the host's.
#[tokio::test]
async fn the_guest_sees_its_environment_only() {
    const PRINT_ENV: &str = r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (drop (call $get (i32.const 64) (i32.const 1024)))
    ;; All the variables' bytes, NULs between, as one write.
    (i32.store (i32.const 8) (i32.const 1024))
    (i32.store (i32.const 12) (i32.load (i32.const 4)))
    (drop (call $write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 200)))))"#;
    let f = fixture("env");
    let m = compile(&f.rt, "ee", PRINT_ENV);
    let r = f.rt.execute(&m, request("")).await;
    assert_eq!((&r.end, text(&r.stdout)), (&End::Exit(0), ""));
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r =
        f.rt.execute(
            &m,
            ExecRequest {
                env: vec![("TRACEPARENT".into(), tp.into())],
                ..request("")
            },
        )
        .await;
    assert_eq!(
        (&r.end, text(&r.stdout)),
        (&End::Exit(0), format!("TRACEPARENT={tp}\0").as_str())
    );
}

#[tokio::test]
async fn trap_has_a_message_and_a_backtrace() {
    let f = fixture("trap");
    let m = compile(&f.rt, "aa", examples::TRAP);
    let r = f.rt.execute(&m, request("")).await;
    let End::Trap { message, detail } = &r.end else {
        panic!("{:?}", r.end)
    };
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        detail.as_deref().unwrap_or_default().contains("fail"),
        "{detail:?}"
    );
    assert_eq!(text(&r.stderr), "about to fail\n");
}

#[tokio::test]
async fn timeouts_stop_busy_loops_and_host_waits() {
    let f = fixture("timeout");
    for (i, wat) in [examples::SPIN, examples::SLEEP].iter().enumerate() {
        let m = compile(&f.rt, &format!("b{i}"), wat);
        let mut req = request("");
        req.timeout = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let r = f.rt.execute(&m, req).await;
        assert_eq!(r.end, End::Timeout, "case {i}");
        assert!(started.elapsed() < Duration::from_secs(2), "case {i}");
    }
    // A busy loop spends CPU and says so.
    let m = compile(&f.rt, "b0", examples::SPIN);
    let mut req = request("");
    req.timeout = Duration::from_millis(300);
    let r = f.rt.execute(&m, req).await;
    assert!(r.cpu > Duration::from_millis(100), "{:?}", r.cpu);
    assert_eq!(text(&r.stderr), "spinning\n");
}

#[test]
fn cpu_budget_is_share_of_elapsed_plus_one_period() {
    let ms = Duration::from_millis;
    // 100 millicpu: 10 ms of burst, then 0.1 ms of CPU per ms.
    assert_eq!(resume_at(ms(10), ms(0), 0.1), None);
    assert_eq!(resume_at(ms(19), ms(100), 0.1), None);
    let at = resume_at(ms(30), ms(50), 0.1).unwrap();
    assert!((at.as_secs_f64() - 0.2).abs() < 1e-9, "{at:?}");
    // 300 millicpu: 30 ms of burst.
    assert_eq!(resume_at(ms(30), ms(0), 0.3), None);
    let at = resume_at(ms(60), ms(10), 0.3).unwrap();
    assert!((at.as_secs_f64() - 0.1).abs() < 1e-9, "{at:?}");
}

/// A busy loop given a share of a CPU uses that share of its wall time (plus one period's
/// burst and a tick or two), never more; without a share it takes what it gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_share_is_enforced() {
    let f = fixture("cpu");
    let m = compile(&f.rt, "spin", examples::SPIN);
    let run = |cpu_millis| {
        let mut req = request("");
        req.timeout = Duration::from_millis(1000);
        req.cpu_millis = cpu_millis;
        f.rt.execute(&m, req)
    };
    for millis in [100u32, 200] {
        let r = run(Some(millis)).await;
        assert_eq!(r.end, End::Timeout);
        let share = f64::from(millis) / 1000.0;
        // The budget, plus what the last slice before a check overran (a tick, or more when
        // the ticker thread is late on a loaded machine).
        let most = share * r.duration.as_secs_f64() + share * CPU_PERIOD.as_secs_f64() + 0.05;
        let used = r.cpu.as_secs_f64();
        eprintln!(
            "cpu {millis} millicpu: {used:.3} s of CPU in {:?}",
            r.duration
        );
        assert!(
            used <= most,
            "{millis} millicpu used {used:.3} s, at most {most:.3}"
        );
        assert!(used > 0.0);
    }
    // The control: unthrottled, the same loop uses far more than the 100-millicpu bound.
    let r = run(None).await;
    eprintln!("no limit: {:?} of CPU in {:?}", r.cpu, r.duration);
    assert!(r.cpu > Duration::from_millis(200), "{:?}", r.cpu);
}

#[tokio::test]
async fn memory_limit_and_peak() {
    let f = fixture("memory");
    let m = compile(&f.rt, "cc", examples::GROW);
    let mut req = request("");
    req.memory_bytes = 1024 * 1024;
    let r = f.rt.execute(&m, req).await;
    assert_eq!(r.end, End::MemoryLimit);
    assert_eq!(r.memory_peak_bytes, 1024 * 1024);
    // The initial memory counts: a limit below one page refuses to instantiate.
    let m = compile(&f.rt, "cd", examples::HELLO);
    let mut req = request("");
    req.memory_bytes = 1000;
    assert_eq!(f.rt.execute(&m, req).await.end, End::MemoryLimit);
    let r = f.rt.execute(&m, request("")).await;
    assert_eq!((r.end, r.memory_peak_bytes), (End::Exit(0), 65536));
}

#[tokio::test]
async fn output_beyond_the_limit_is_dropped_and_counted() {
    let f = fixture("output");
    let m = compile(&f.rt, "dd", examples::ECHO);
    let mut req = request("0123456789");
    req.output_limit = 4;
    let r = f.rt.execute(&m, req).await;
    assert_eq!(r.end, End::Exit(0));
    assert_eq!((text(&r.stdout), r.stdout_dropped), ("0123", 6));
    assert_eq!((text(&r.stderr), r.stderr_dropped), ("log:", 17));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_executions_keep_their_own_streams() {
    let f = fixture("concurrent");
    let m = compile(&f.rt, "ee", examples::ECHO);
    let mut tasks = Vec::new();
    // More executions than instance slots: the rest wait for one.
    for i in 0..20 {
        let rt = f.rt.clone();
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            let r = rt.execute(&m, request(&format!("{i}"))).await;
            (i, r)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        assert_eq!(
            (r.end, text(&r.stdout)),
            (End::Exit(0), format!("{i}").as_str())
        );
        assert_eq!(text(&r.stderr), "log: hello from wasm\n");
    }
}

#[tokio::test]
async fn the_first_execution_is_cold() {
    let f = fixture("cold");
    let m = compile(&f.rt, "ff", examples::HELLO);
    assert!(f.rt.execute(&m, request("")).await.cold);
    assert!(!f.rt.execute(&m, request("")).await.cold);
}

#[test]
fn invalid_modules_say_why() {
    let f = fixture("invalid");
    let env_import = r#"(module (import "env" "f" (func)) (func (export "_start")))"#;
    let unknown_wasi =
        r#"(module (import "wasi_snapshot_preview1" "nope" (func)) (func (export "_start")))"#;
    let reactor = r#"(module (func (export "_initialize")))"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not wasm", b"hello".to_vec(), "magic header"),
        (
            "env import",
            wat::parse_str(env_import).unwrap(),
            "imports `env::f`",
        ),
        (
            "unknown wasi function",
            wat::parse_str(unknown_wasi).unwrap(),
            "wasi_snapshot_preview1::nope",
        ),
        (
            "no _start",
            wat::parse_str(reactor).unwrap(),
            "no `_start` function",
        ),
    ];
    for (what, bytes, expect) in cases {
        match f.rt.compile(&key("ab"), &bytes) {
            Err(WasmError::Invalid(msg)) => assert!(msg.contains(expect), "{what}: {msg}"),
            Err(other) => panic!("{what}: {other}"),
            Ok(_) => panic!("{what}: compiled"),
        }
    }
}

#[tokio::test]
async fn artefacts_survive_a_restart_and_go_with_their_package() {
    let f = fixture("artefacts");
    compile(&f.rt, "abcd", examples::HELLO);
    assert_eq!(f.rt.inner.artefacts.files().len(), 1);
    // A new runtime on the same directory (a restart) loads it without compiling.
    let mut cfg = WasmConfig::new(f.dir.clone());
    cfg.max_instances = 2;
    let again = WasmRuntime::new(cfg).unwrap();
    assert!(again.cached(&key("abcd")).is_none());
    let m = again.load(&key("abcd")).expect("loaded from disk");
    assert_eq!(
        text(&again.execute(&m, request("")).await.stdout),
        "\"Hello, World\""
    );
    assert!(again.cached(&key("abcd")).is_some());
    // A corrupt artefact is not used (and is removed). It is replaced as the server
    // replaces artefacts, by a rename: truncating a file a loaded module maps in place
    // would pull the code from under it.
    let path = f.rt.inner.artefacts.files()[0].clone();
    std::fs::write(path.with_extension("tmp"), b"garbage").unwrap();
    std::fs::rename(path.with_extension("tmp"), &path).unwrap();
    again.evict(&key("abcd"));
    assert!(again.load(&key("abcd")).is_none());
    assert!(!path.exists());
    // Forgetting a package removes its modules everywhere.
    compile(&f.rt, "abcd", examples::HELLO);
    f.rt.forget("abcd");
    assert!(f.rt.load(&key("abcd")).is_none());
    assert!(f.rt.inner.artefacts.files().is_empty());
}

/// A server killed while it wrote an artefact leaves its temporary file
/// (`.<artefact>.<pid>.tmp`); the next start removes it once its writer is gone, as the
/// package store does with its own (issue 16, property 7), and leaves everything else.
#[test]
fn temporary_artefacts_of_dead_writers_are_removed_at_start() {
    let f = fixture("stale");
    compile(&f.rt, "abcd", examples::HELLO);
    let artefact = f.rt.inner.artefacts.files()[0].clone();
    let name = artefact.file_name().unwrap().to_string_lossy().into_owned();
    let dir = artefact.parent().unwrap();
    let dead = dir.join(format!(".{name}.4000001.tmp"));
    let live = dir.join(format!(".{name}.1.tmp"));
    let other = dir.join(".notes.4000001.tmp");
    for p in [&dead, &live, &other] {
        std::fs::write(p, b"half an artefact").unwrap();
    }
    let mut cfg = WasmConfig::new(f.dir.clone());
    cfg.max_instances = 2;
    let again = WasmRuntime::new(cfg).unwrap();
    assert!(!dead.exists(), "a dead writer's temporary file stays");
    assert!(live.exists(), "a live writer's file goes");
    assert!(other.exists(), "a name not of ours is touched");
    assert!(artefact.exists());
    assert!(again.load(&key("abcd")).is_some());
}

#[test]
fn memory_cache_evicts_the_least_recently_used() {
    let f = fixture("lru");
    let mut cfg = WasmConfig::new(f.dir.join("small"));
    cfg.cached_modules = 2;
    cfg.max_instances = 2;
    let rt = WasmRuntime::new(cfg).unwrap();
    let wasm = wat::parse_str(examples::HELLO).unwrap();
    rt.compile(&key("01"), &wasm).unwrap();
    rt.compile(&key("02"), &wasm).unwrap();
    assert!(rt.cached(&key("01")).is_some());
    rt.compile(&key("03"), &wasm).unwrap();
    assert!(rt.cached(&key("01")).is_some());
    assert!(rt.cached(&key("02")).is_none());
    assert!(rt.cached(&key("03")).is_some());
}
