//! The people tests sign in as: made through `auth` as the CLI would, signed in
//! through the real login form (password and authenticator code).
#![allow(dead_code)]

use sika::auth::Role;

use super::TestApp;
use super::browser::{Browser, code};

/// Every test person's password (strong enough for the password policy).
pub const PASSWORD: &str = "Corr3ct-Horse!Battery";

/// A console user: who they are and the authenticator secret their codes come from.
pub struct Person {
    pub id: String,
    pub email: String,
    pub secret: String,
}

impl Person {
    /// Their authenticator code `offset` steps from now on Sika's clock.
    pub fn code(&self, offset: i64) -> String {
        code(&self.secret, offset)
    }
}

impl TestApp {
    /// A person with `role`, enrolled in two-factor sign-in, made as `sika user add` makes one.
    pub async fn person(&self, role: Role, email: &str) -> Person {
        self.person_named(role, email, None).await
    }

    /// [`Self::person`] with a display name.
    pub async fn person_named(&self, role: Role, email: &str, name: Option<&str>) -> Person {
        let c = self.auth.create_user(&sika::audit::Actor::cli(), email, name, role, PASSWORD, true).await.unwrap();
        Person { id: c.id, email: email.to_string(), secret: c.totp_secret }
    }

    /// A browser with no session yet.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base, self.client.clone())
    }

    /// A new person with `role`, signed in with the code `offset` steps from now (a test that
    /// will step up later signs in a step early, so the later code is not a replay).
    pub async fn signed_in_at(&self, role: Role, email: &str, offset: i64) -> (Person, Browser) {
        let p = self.person(role, email).await;
        let mut b = self.browser();
        let res = b.login(&p.email, PASSWORD, &p.code(offset)).await;
        assert_eq!(res.status, 303, "{email} signs in: {}", res.body);
        (p, b)
    }

    /// [`Self::signed_in_at`] with the current code.
    pub async fn signed_in(&self, role: Role, email: &str) -> (Person, Browser) {
        self.signed_in_at(role, email, 0).await
    }
}
