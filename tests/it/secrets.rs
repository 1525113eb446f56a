//! Secrets and file modes: tokens and URL passwords never appear in anything chroma-snap writes or
//! prints (every command, `--json`, trace logging, failing runs), and what it writes is readable by
//! its owner only unless `--shared-perms` is given.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::bad_inputs::{good, one_target_spec, records_snapshot};
use crate::export::tmp;
use crate::harness::{self, Server, V0, V1};

/// Every run of the binary, kept so that all of its output can be searched at the end.
#[derive(Default)]
struct Runs(Vec<(String, Output)>);

impl Runs {
    /// Runs chroma-snap with trace logging and asserts its exit code.
    fn run(&mut self, args: &[&str], code: i32) -> &Output {
        let o = Command::new(harness::bin()).args(args).arg("-vv").env("NO_COLOR", "1").output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(code), "{args:?}:\n{err}");
        if code != 0 {
            let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
            assert_eq!(errors.len(), 1, "{args:?}: one error line expected:\n{err}");
        }
        self.0.push((format!("{args:?}"), o));
        &self.0.last().unwrap().1
    }

    fn stderr_of_last(&self) -> String {
        String::from_utf8_lossy(&self.0.last().unwrap().1.stderr).into_owned()
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file and directory under `dir` (itself included) has mode `file` / `dir`.
fn assert_modes(dir: &Path, file: u32, dirs: u32) {
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), dirs, "{}", dir.display());
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let want = if p.is_dir() { dirs } else { file };
            assert_eq!(mode(&p), want, "{}: {:o} instead of {want:o}", p.display(), mode(&p));
            if p.is_dir() {
                stack.push(p);
            }
            seen += 1;
        }
    }
    assert!(seen > 0, "{} is empty", dir.display());
}

#[test]
fn secrets_never_reach_files_or_output_and_files_are_owner_only() {
    let token = "tok-Zq8xW3-secret";
    let wrong = "wrong-tok-Kp2Yv9";
    let pass = "s3cr3t-pass";
    let t = tmp();
    let root = t.path();
    let p = |name: &str| root.join(name).to_str().unwrap().to_owned();
    let mut runs = Runs::default();

    // A 0.4.24 server with token auth: export, transform, load, verify --against, inspect.
    let legacy = Server::start_with_token(V0, token);
    let prefix = harness::unique("sec");
    let seed_args = [legacy.url.as_str(), prefix.as_str(), "--big", "20"];
    harness::run_py_env(V0, "tests/py/seed_edge_cases.py", &seed_args, &[("CHROMA_TOKEN", token)]);
    let big = format!("{prefix}_big");
    let url0 = legacy.url.as_str();
    let tok = ["--token", token];
    runs.run(&[&["export", "--from", url0, "--out", &p("exp0"), "--collection", &big, "--json"][..], &tok].concat(), 0);
    runs.run(&["export", "--from", url0, "--out", &p("exp0-wrong"), "--token", wrong], 1);
    assert!(runs.stderr_of_last().contains("refused the credentials (401)"), "{}", runs.stderr_of_last());
    let spec = one_target_spec(root);
    runs.run(&["transform", &p("exp0"), "--spec", spec.to_str().unwrap(), "--out", &p("tr"), "--json"], 0);
    runs.run(&[&["load", &p("tr"), "--to", url0, "--json"][..], &tok].concat(), 0);
    // Load with a wrong token: one clear line naming the server, exit 1, the token nowhere.
    runs.run(&["load", &p("tr"), "--to", url0, "--collection", "out_docs=other_docs", "--token", wrong], 1);
    let err = runs.stderr_of_last();
    assert!(err.contains(&format!("error: {url0} refused the credentials (401)")), "{err}");
    assert!(err.contains("check --token / CHROMA_TOKEN / --header"), "{err}");
    runs.run(&[&["verify", &p("tr"), "--against", url0, "--json"][..], &tok].concat(), 0);
    runs.run(&["inspect", &p("tr"), "--json"], 0);
    drop(legacy);

    // A 1.5.9 server reached through a URL with a user and password.
    let server = harness::shared(V1);
    let url1 = server.url.replace("http://", &format!("http://user:{pass}@"));
    let syn = records_snapshot(&root.join("syn"), vec![("docs", 4, good(6))]);
    let name = harness::unique("secret");
    let map = format!("docs={name}");
    runs.run(&["load", syn.to_str().unwrap(), "--to", &url1, "--collection", &map, "--json"], 0);
    runs.run(&["load", syn.to_str().unwrap(), "--to", &url1, "--collection", &map, "--dry-run", "--json"], 0);
    runs.run(
        &["load", syn.to_str().unwrap(), "--to", &url1, "--collection", &format!("docs={name}"), "--if-exists", "fail"],
        2,
    );
    runs.run(&["export", "--from", &url1, "--out", &p("exp1"), "--collection", &name, "--json"], 0);
    runs.run(&["verify", syn.to_str().unwrap(), "--against", &url1, "--collection", &map, "--json"], 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://user:{pass}@127.0.0.1:{port}");
    runs.run(&["export", "--from", &dead, "--out", &p("exp-dead")], 1);
    assert!(runs.stderr_of_last().contains(&format!("cannot reach ChromaDB at http://127.0.0.1:{port}")));

    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("user:{pass}"));
    let secrets = [token, wrong, pass, basic.as_str()];
    for (what, o) in &runs.0 {
        for s in secrets {
            assert!(!contains(&o.stdout, s) && !contains(&o.stderr, s), "{s:?} printed by {what}");
        }
    }
    let written = crate::harness::files_under(root);
    assert!(written.iter().any(|(p, _)| p.extension().is_some_and(|x| x == "jsonl")), "journals were searched");
    assert!(written.iter().any(|(p, _)| p.ends_with("report.json")), "reports were searched");
    for (path, bytes) in &written {
        for s in secrets {
            assert!(!contains(bytes, s), "{s:?} written into {}", path.display());
        }
    }

    // Owner only: everything the commands created (snapshots, parts, rejects, report, journals).
    for d in ["exp0", "tr", "exp1", "syn/.chroma-snap"] {
        assert_modes(&root.join(d), 0o600, 0o700);
    }
}

#[test]
fn shared_perms_lets_the_umask_decide() {
    let t = tmp();
    let s = records_snapshot(&t.path().join("s"), vec![("docs", 4, good(4))]);
    let spec = one_target_spec(t.path());
    let transform = |out: &Path, shared: bool| {
        let mut c = Command::new("sh");
        c.args(["-c", "umask 022 && exec \"$@\"", "sh"]).arg(harness::bin()).arg("transform").arg(&s);
        c.arg("--spec").arg(&spec).arg("--out").arg(out).arg("--quiet");
        if shared {
            c.arg("--shared-perms");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (private, shared) = (t.path().join("private"), t.path().join("shared"));
    transform(&private, false);
    transform(&shared, true);
    assert_modes(&private, 0o600, 0o700);
    assert_modes(&shared, 0o644, 0o755);
}
