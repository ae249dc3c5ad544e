//! Real binaries for drills: the `sika emulator` and `sika serve` instances
//! on one database, behind a small TCP load balancer, with secrets made at
//! run time. Used by the chaos drill and the shared-budget drill.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sika::secret::Secret;

/// The binary: the one cargo built for the tests, else (a benchmark) the release build.
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_sika") {
    Some(b) => b,
    None => "target/release/sika",
};

/// A client that trusts the drill's self-signed certificate.
pub fn client_trusting(cert_pem: &str) -> reqwest::ClientBuilder {
    let cert = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("cert");
    reqwest::Client::builder().use_rustls_tls().add_root_certificate(cert).redirect(reqwest::redirect::Policy::none())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Reads the `emulator: http://…` line the emulator prints once it listens (a minute at most).
fn emulator_address(emulator: &mut Child) -> String {
    use std::io::BufRead as _;
    let stdout = emulator.stdout.take().expect("the emulator's output is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("emulator: ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the emulator did not say where it listens")
}

pub fn write_private(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

pub struct Instance {
    pub port: u16,
    pub metrics_port: u16,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub starts: usize,
}

impl Instance {
    /// Starts (or restarts) this instance with `env`.
    pub fn spawn(&mut self, env: &[(String, String)]) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("SIKA_LISTEN", format!("127.0.0.1:{}", self.port));
        cmd.env("SIKA_METRICS_LISTEN", format!("127.0.0.1:{}", self.metrics_port));
        cmd.env("SIKA_AUDIT_CHECKPOINT_FILE", self.log.with_extension("checkpoints"));
        self.child = Some(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap());
        self.starts += 1;
    }

    /// SIGKILL: no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait for it to stop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }

    /// One line of this instance's metrics (the value of the series named `series`), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text =
            reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port)).await.ok()?.text().await.ok()?;
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pub cert_pem: String,
    pub emulator: Child,
    pub emulator_url: String,
    pub instances: Vec<Instance>,
    pub lb_port: u16,
    lb_listener: Option<std::net::TcpListener>,
    pub flw_key: String,
    pub flw_hash: String,
    pub data_key: String,
    pub audit_key: String,
    /// The database, migrated, for the drill's own checks.
    pub store: sika::store::Store,
    pub http: reqwest::Client,
}

impl Cluster {
    /// The database migrated, the emulator running (webhooks to the balancer),
    /// `instances` instances ready to start with `extra_env` over the defaults.
    pub async fn prepare(database_url: &str, instances: usize, seed: u64, extra_env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let (cert_pem, key_pem) = sika::server::tls::self_signed().unwrap();
        let cert = dir.path().join("cert.pem");
        write_private(&cert, &cert_pem);
        let key = dir.path().join("key.pem");
        write_private(&key, &key_pem);
        let data_key = sika::crypto::keyring::KeyRing::generate_text("k1");
        let audit_key = sika::crypto::random::token();
        let flw_key = format!("FLWSECK_TEST-{}-X", sika::crypto::random::hex_id());
        let flw_hash = sika::crypto::random::token();
        // The balancer's port is held from here on, so no other test can take it meanwhile.
        let lb_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        lb_listener.set_nonblocking(true).unwrap();
        let lb_port = lb_listener.local_addr().unwrap().port();
        let store = sika::store::Store::connect(&Secret::new(database_url.to_string())).await.unwrap();
        store.migrate().await.unwrap();
        // The emulator binds a port of its own choosing and says which: no race with other tests for a port.
        let mut emulator = Command::new(BIN)
            .args([
                "emulator",
                "--listen",
                "127.0.0.1:0",
                // `--name=value`: a generated secret may begin with `-`.
                &format!("--secret-key={flw_key}"),
                &format!("--secret-hash={flw_hash}"),
                "--webhook-url",
                &format!("https://127.0.0.1:{lb_port}/webhooks/flutterwave"),
                "--webhook-ca-file",
                cert.to_str().unwrap(),
                "--seed",
                &seed.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let emulator_url = emulator_address(&mut emulator);
        let mut env: Vec<(String, String)> = [
            ("SIKA_DATABASE_URL", database_url),
            ("SIKA_PUBLIC_URL", &format!("https://127.0.0.1:{lb_port}/")),
            ("SIKA_TLS_CERT_FILE", cert.to_str().unwrap()),
            ("SIKA_TLS_KEY_FILE", key.to_str().unwrap()),
            ("SIKA_DATA_KEY", &data_key),
            ("SIKA_AUDIT_KEY", &audit_key),
            ("FLW_BASE_URL", &format!("{emulator_url}/v3")),
            ("FLW_SECRET_KEY", &flw_key),
            ("FLW_SECRET_HASH", &flw_hash),
            ("SIKA_NOTIFY_ALLOW_LOOPBACK", "true"),
            // Every client arrives from the balancer's address.
            ("SIKA_MAX_CONNECTIONS_PER_IP", "0"),
            ("SIKA_LOG", "info"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra_env {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let instances = (0..instances)
            .map(|i| Instance {
                port: free_port(),
                metrics_port: free_port(),
                log: dir.path().join(format!("instance-{i}.log")),
                child: None,
                starts: 0,
            })
            .collect();
        let http = client_trusting(&cert_pem).timeout(Duration::from_secs(30)).build().unwrap();
        Cluster {
            dir,
            env,
            cert_pem,
            emulator,
            emulator_url,
            instances,
            lb_port,
            lb_listener: Some(lb_listener),
            flw_key,
            flw_hash,
            data_key,
            audit_key,
            store,
            http,
        }
    }

    /// Starts every instance, waits until each answers, and starts the balancer.
    pub async fn start(&mut self) {
        let env = self.env.clone();
        for i in &mut self.instances {
            i.spawn(&env);
        }
        for i in 0..self.instances.len() {
            self.wait_ready(i).await;
        }
        if let Some(l) = self.lb_listener.take() {
            let backends = self.instances.iter().map(|i| SocketAddr::from(([127, 0, 0, 1], i.port))).collect();
            tokio::spawn(balance(tokio::net::TcpListener::from_std(l).unwrap(), backends));
        }
    }

    pub async fn wait_ready(&self, i: usize) {
        wait_ready(&self.http, self.instances[i].port).await;
    }

    /// Through the balancer.
    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.lb_port)
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new().post(format!("{}{path}", self.emulator_url)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_emulator/stats", self.emulator_url)).await.unwrap().json().await.unwrap()
    }

    /// Stops every instance (SIGTERM) and the emulator; says which logs show a panic.
    pub fn stop(&mut self) -> Vec<String> {
        for i in &mut self.instances {
            i.stop();
        }
        let _ = self.emulator.kill();
        let _ = self.emulator.wait();
        self.instances
            .iter()
            .filter_map(|i| {
                let log = std::fs::read_to_string(&i.log).unwrap_or_default();
                log.contains("panicked").then(|| format!("{}: {log}", i.log.display()))
            })
            .collect()
    }
}

pub async fn wait_ready(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("https://127.0.0.1:{port}/healthz")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "instance on {port} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP load balancer: round robin over the instances, skipping one that
/// refuses the connection (killed). TLS passes through.
pub async fn balance(listener: tokio::net::TcpListener, backends: Vec<SocketAddr>) {
    let mut turn = 0usize;
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else { continue };
        turn += 1;
        let backends = backends.clone();
        tokio::spawn(async move {
            for k in 0..backends.len() {
                if let Ok(mut out) = tokio::net::TcpStream::connect(backends[(turn + k) % backends.len()]).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    return;
                }
            }
        });
    }
}
