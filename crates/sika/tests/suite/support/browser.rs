//! A minimal browser for console tests: keeps cookies by hand (so tests can
//! look at, keep and replay them), sends `Origin` like a browser's form post.
#![allow(dead_code)]

use std::collections::HashMap;

use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};

pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: HashMap<String, String>,
    pub set_cookies: Vec<String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the first hidden `csrf_token` field.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let i = self.body.find(marker).expect("a csrf_token field") + marker.len();
        self.body[i..].split('"').next().unwrap().to_string()
    }
}

impl Browser {
    pub fn new(base: &str, client: reqwest::Client) -> Self {
        Browser { base: base.to_string(), client, cookies: HashMap::new(), set_cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn absorb(&mut self, res: reqwest::Response) -> Page {
        for v in res.headers().get_all(SET_COOKIE) {
            let text = v.to_str().unwrap().to_string();
            let (pair, attrs) = text.split_once(';').unwrap_or((&text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
            self.set_cookies.push(text);
        }
        let status = res.status().as_u16();
        let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        let headers = res.headers().clone();
        Page { status, location, headers, body: res.text().await.unwrap() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let res =
            self.client.get(format!("{}{path}", self.base)).header(COOKIE, self.cookie_header()).send().await.unwrap();
        self.absorb(res).await
    }

    /// A form post with `Origin` set to Sika's own origin.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with_origin(path, form, Some(&self.base.clone())).await
    }

    pub async fn post_with_origin(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        let mut req = self.client.post(format!("{}{path}", self.base)).header(COOKIE, self.cookie_header()).form(form);
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        let res = req.send().await.unwrap();
        self.absorb(res).await
    }

    /// Signs in through the login form; returns the final response of the POST.
    pub async fn login(&mut self, email: &str, password: &str, code: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = form.csrf();
        self.post("/login", &[("email", email), ("password", password), ("totp", code), ("csrf_token", &csrf)]).await
    }

    pub fn session(&self) -> Option<String> {
        self.cookies.get("__Host-sika").cloned()
    }
}

/// The TOTP code for `secret` at `offset` steps from now (Sika's clock, which a test may have moved).
pub fn code(secret: &str, offset: i64) -> String {
    let raw = sika::crypto::totp::decode_secret(secret).unwrap();
    let now = sika::clock::now_ms() / 1000;
    sika::crypto::totp::code(&raw, sika::crypto::totp::step_at(now) + offset)
}
