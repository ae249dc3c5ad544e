//! The README's integration guide, proven: each example shop in `examples/` (Python, Node.js,
//! PHP, standard libraries only) runs against `sika demo`, creates a checkout, sends the customer
//! to the emulator's hosted page, receives Sika's signed notification and verifies it, and reads
//! the checkout's status — and refuses a forged or stale notification. An interpreter missing is
//! said loudly, and fails the test under CI (`.ci/run` installs php-cli and nodejs).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cluster::{BIN, free_port};

struct Demo {
    child: Child,
    dir: tempfile::TempDir,
    base: String,
    http: reqwest::Client,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn data(d: &tempfile::TempDir) -> PathBuf {
    d.path().join("demo")
}

fn start_demo() -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["demo", "--empty", "--data-dir", data(&dir).to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("sika demo is ready: ") {
                let _ = tx.send(url.trim().trim_end_matches('/').to_string());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(90)).expect("the demo did not start");
    let pem = std::fs::read_to_string(data(&dir).join("tls/cert.pem")).unwrap();
    let http = crate::support::client_for(&pem).build().unwrap();
    Demo { child, dir, base, http }
}

/// `key=value` from a `sika` command's output.
fn sika_prints(args: &[&str], key: &str) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("{key}= in {text}")).into()
}

fn present(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// How to start each shop on `port`.
fn shop_command(language: &str, port: u16) -> Command {
    let dir = examples().join(language);
    let mut c = match language {
        "python" => {
            let mut c = Command::new("python3");
            c.arg(dir.join("shop.py"));
            c
        }
        "node" => {
            let mut c = Command::new("node");
            c.arg(dir.join("shop.js"));
            c
        }
        _ => {
            let mut c = Command::new("php");
            c.args(["-S", &format!("127.0.0.1:{port}"), dir.join("shop.php").to_str().unwrap()]);
            c
        }
    };
    c.env("SHOP_PORT", port.to_string());
    c
}

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "the shop did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sign(secret: &str, t: i64, body: &str) -> String {
    sika::payments::notify::signature(secret, t, body)
}

async fn a_shop_takes_a_payment(demo: &Demo, language: &str, api_key: &str) {
    let data = data(&demo.dir);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/sika/notifications");
    let secret = sika_prints(&["notify", "set", "--url", &url, "--data-dir", data.to_str().unwrap()], "notify_secret");
    let orders = tempfile::tempdir().unwrap();
    let mut shop = shop_command(language, port)
        .env("SIKA_URL", &demo.base)
        .env("SIKA_API_KEY", api_key)
        .env("SIKA_NOTIFY_SECRET", &secret)
        .env("SIKA_CA_FILE", data.join("tls/cert.pem"))
        .env("SHOP_ORDERS", orders.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_listening(port).await;
    let shop_url = format!("http://127.0.0.1:{port}");
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // The customer clicks "buy": the shop creates a checkout and sends them to it.
    let buy = plain.get(format!("{shop_url}/buy?amount=2500.00&currency=NGN")).send().await.unwrap();
    assert_eq!(buy.status(), 303, "{language}: {:?}", buy.text().await);
    let checkout_url = buy.headers()["location"].to_str().unwrap().to_string();
    let reference = buy.json::<Value>().await.unwrap()["reference"].as_str().unwrap().to_string();
    assert!(checkout_url.contains("/hosted/pay/"), "{language}: sent to Flutterwave's page: {checkout_url}");
    // ... and pays on the (emulated) Flutterwave page.
    let paid = plain.post(&checkout_url).form(&[("action", "pay"), ("card", "0")]).send().await.unwrap();
    assert!(paid.status().is_redirection() || paid.status().is_success(), "{language}: {}", paid.status());

    // Sika verifies with Flutterwave and notifies the shop; the shop verifies the signature and reads the status.
    let deadline = Instant::now() + Duration::from_secs(60);
    let order = loop {
        let o: Value = plain.get(format!("{shop_url}/orders/{reference}")).send().await.unwrap().json().await.unwrap();
        if o["status"] == "paid" && o["notified"].as_array().is_some_and(|n| !n.is_empty()) {
            break o;
        }
        assert!(Instant::now() < deadline, "{language}: the shop never heard its order was paid: {o}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(order["notified"].as_array().unwrap().len(), 1, "{language}: one notification: {order}");

    // A forged notification (wrong secret) and a replayed one (stale timestamp) are refused.
    let now = sika::clock::now_ms() / 1000;
    let forged = format!(r#"{{"id":"forged","event":"checkout.failed","reference":"{reference}","status":"failed"}}"#);
    for (why, header) in [
        ("forged", sign("whsec_not-the-secret", now, &forged)),
        ("stale", sign(&secret, now - 600, &forged)),
        ("unsigned", String::new()),
    ] {
        let r = plain
            .post(format!("{shop_url}/sika/notifications"))
            .header("sika-signature", header)
            .body(forged.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{language}: a {why} notification is refused");
    }
    let o: Value = plain.get(format!("{shop_url}/orders/{reference}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(o["notified"].as_array().unwrap().len(), 1, "{language}: nothing forged was taken: {o}");
    let checkout: Value = demo
        .http
        .get(format!("{}/api/v1/checkouts/{reference}", demo.base))
        .bearer_auth(api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(checkout["status"], "paid");
    let _ = shop.kill();
    let _ = shop.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_example_shop_takes_a_payment_against_the_demo() {
    let demo = start_demo();
    let data = data(&demo.dir);
    let api_key = sika_prints(
        &["apikey", "create", "--name", "examples", "--scopes", "checkouts,read", "--data-dir", data.to_str().unwrap()],
        "api_key",
    );
    let mut ran = Vec::new();
    for (language, program) in [("python", "python3"), ("node", "node"), ("php", "php")] {
        if !present(program) {
            assert!(std::env::var_os("CI").is_none(), "{program} is not installed: the {language} example cannot run");
            eprintln!("#### SKIPPED: {program} is not installed: the {language} example did NOT run ####");
            continue;
        }
        a_shop_takes_a_payment(&demo, language, &api_key).await;
        ran.push(language);
    }
    println!("examples run against the demo: {ran:?}");
}

#[test]
fn notify_set_refuses_a_url_that_is_not_https() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["notify", "set", "--url", "http://shop.example/hook", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url: The URL must be https://"), "{out:?}");
}
