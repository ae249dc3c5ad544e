//! Just enough of the W3C WebDriver protocol to drive Debian's headless
//! Chromium through chromedriver: open pages, type, click, read, go back.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    process: Child,
    base: String,
    http: reqwest::Client,
    _profiles: tempfile::TempDir,
}

pub struct Browser<'a> {
    driver: &'a Driver,
    session: String,
}

fn find(candidates: &[&str]) -> Option<String> {
    candidates.iter().find(|p| std::path::Path::new(p).exists()).map(|p| p.to_string())
}

impl Driver {
    /// Starts chromedriver, or `None` (with a loud note) when Chromium is not
    /// installed. In CI (`CI` set) a missing browser is a failure, never a skip.
    pub async fn start() -> Option<Driver> {
        let (Some(chromedriver), Some(_)) =
            (find(&["/usr/bin/chromedriver"]), find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]))
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install chromium and chromium-driver: browser tests cannot be skipped"
            );
            eprintln!("NOTE: chromium/chromedriver not installed: the browser tests did NOT run.");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(Driver { process, base, http, _profiles: tempfile::tempdir().unwrap() })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.expect("chromedriver answers").json().await.expect("JSON");
        if let Some(err) = v["value"].get("error") {
            panic!("webdriver {path}: {err} {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    /// A new, isolated browser (its own profile, so its own cookies).
    pub async fn browser(&self) -> Browser<'_> {
        let profile = self._profiles.path().join(crate::support::random_name());
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]).unwrap(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--ignore-certificate-errors", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.display())]
        }}}});
        let v = self.call(reqwest::Method::POST, "/session", Some(caps)).await;
        Browser { driver: self, session: v["sessionId"].as_str().expect("session id").to_string() }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Browser<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.driver.call(method, &format!("/session/{}{path}", self.session), body).await
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or("").to_string()
    }

    /// Asks `check` every 100 ms, for up to 20 s (CI's two cores also run the
    /// other tests), until it says yes; whether it did.
    pub async fn until(&self, check: impl AsyncFn(&Self) -> bool) -> bool {
        for _ in 0..200 {
            if check(self).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Waits for navigation to reach a URL ending with `suffix`: a click that
    /// submits a form returns before the next page has loaded. A URL that never
    /// comes fails the test: a silent timeout once hid a form that sent the wrong value.
    pub async fn wait_url(&self, suffix: &str) -> String {
        if self.until(async |b| b.url().await.ends_with(suffix) && b.ready().await).await {
            return self.url().await;
        }
        panic!("waited 20 s for a URL ending with {suffix}; the browser is at {}", self.url().await)
    }

    /// Waits for an element to appear: a form that posts back to its own URL
    /// leaves `wait_url` nothing to wait for, and the old page is still
    /// "complete" until the answer replaces it.
    pub async fn wait_for(&self, css: &str) -> bool {
        self.until(async |b| b.has(css).await && b.ready().await).await
    }

    /// Waits for the page to contain `text` (an answer that arrives after a click).
    pub async fn wait_text(&self, text: &str) -> bool {
        self.until(async |b| b.source().await.contains(text)).await
    }

    /// Waits for the page to finish loading.
    pub async fn wait_ready(&self) -> bool {
        self.until(async |b| b.ready().await).await
    }

    async fn ready(&self) -> bool {
        let v = self
            .call(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({"script": "return document.readyState", "args": []})),
            )
            .await;
        v.as_str() == Some("complete")
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or("").to_string()
    }

    async fn element(&self, css: &str) -> String {
        let v =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}")).to_string()
    }

    pub async fn has(&self, css: &str) -> bool {
        let v = self
            .driver
            .http
            .post(format!("{}/session/{}/element", self.driver.base, self.session))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        v["value"].get(ELEMENT).is_some()
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.element(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{e}/text"), None).await.as_str().unwrap_or("").to_string()
    }

    /// Replaces a field's value, as a person selecting it and typing would
    /// (typing alone appends to what the page suggested).
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/clear"), Some(json!({}))).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/value"), Some(json!({"text": text}))).await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/click"), Some(json!({}))).await;
    }

    pub async fn back(&self) {
        self.call(reqwest::Method::POST, "/back", Some(json!({}))).await;
    }

    pub async fn cookies(&self) -> Vec<Value> {
        self.call(reqwest::Method::GET, "/cookie", None).await.as_array().cloned().unwrap_or_default()
    }

    /// Runs `script` in the page (a function body; `return` gives the value).
    pub async fn execute(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// Runs `script` that calls its last argument when done; waits up to 60 s.
    pub async fn execute_async(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/timeouts", Some(json!({"script": 60_000}))).await;
        self.call(reqwest::Method::POST, "/execute/async", Some(json!({"script": script, "args": []}))).await
    }

    /// The page as a PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or("")).expect("a base64 PNG")
    }

    pub async fn set_window(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height}))).await;
    }

    pub async fn quit(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}
