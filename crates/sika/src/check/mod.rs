//! `sika check`: the go-live self-audit. One finding per line of Flutterwave's
//! merchant checklist (`../shared/merchant-checklist.txt`) and per extra that
//! Sika adds, each PASS, WARN or FAIL with its evidence. The configuration is
//! checked where `serve` would read it (`settings`); with `--url` the running
//! server is probed from outside (`live`). Lines that Sika meets by its
//! construction say where (`docs/checklist.md` maps each to its test).

pub mod live;
pub mod settings;
pub mod tls_probe;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// A stable name, e.g. `tls.versions`.
    pub id: &'static str,
    /// The checklist line it answers (or Sika's own extra), as written there.
    pub item: &'static str,
    pub status: Status,
    pub evidence: String,
}

/// Findings in the order they were made.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn add(&mut self, id: &'static str, item: &'static str, status: Status, evidence: impl Into<String>) {
        self.findings.push(Finding { id, item, status, evidence: evidence.into() });
    }

    pub fn pass(&mut self, id: &'static str, item: &'static str, evidence: impl Into<String>) {
        self.add(id, item, Status::Pass, evidence);
    }

    pub fn warn(&mut self, id: &'static str, item: &'static str, evidence: impl Into<String>) {
        self.add(id, item, Status::Warn, evidence);
    }

    pub fn fail(&mut self, id: &'static str, item: &'static str, evidence: impl Into<String>) {
        self.add(id, item, Status::Fail, evidence);
    }

    /// The finding named `id`, if it was made.
    pub fn get(&self, id: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    /// `PASS  id  evidence   (checklist line)`, one per line, then a count.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!("{}  {:<28} {}\n      ({})\n", f.status.as_str(), f.id, f.evidence, f.item));
        }
        let count = |s: Status| self.findings.iter().filter(|f| f.status == s).count();
        out.push_str(&format!(
            "{} passed, {} warnings, {} failed\n",
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail)
        ));
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Checklist lines Sika meets by how it is built, whatever the deployment:
/// (id, checklist line, where it is enforced). Each has its test in
/// `docs/checklist.md`.
pub const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "payments.verify_before_value",
        "Ensure you verify the details of the payment by comparing the amount, currency, transaction reference etc before you give value",
        "only `domain::checkout::judge` makes a `Verified`, from Flutterwave's verify answer (amount, currency, reference, status)",
    ),
    (
        "payouts.asynchronous",
        "Ensure to handle Transfers and Virtual Cards asynchronously via webhooks",
        "payouts are queued, approved, sent and confirmed by webhook and lookup (payouts/); virtual cards (when SIKA_CARDS_ENABLED) are created, funded and withdrawn the same way, card events confirmed against the card's transactions (cards/)",
    ),
    (
        "errors.definite_only",
        "Ensure to cater for edge cases by only giving value or rendering service on a definite response as defined by the APIs",
        "`Reply::{Ok, Rejected, Indefinite}`: an indefinite answer never gives value nor resends (flutterwave crate)",
    ),
    (
        "accounts.bank_codes",
        "You should always pass correct bank codes and valid account numbers. You should check the /banks endpoint to get the bank code before resolving the account details.",
        "payouts check the bank code against Flutterwave's cached /banks list before resolving (payouts/mod.rs)",
    ),
    (
        "accounts.mpesa",
        "You can also resolve MPesa transfer beneficiaries from their mobile numbers.",
        "M-Pesa numbers are resolved with type MOBILEMONEY and country KE (payouts/)",
    ),
    (
        "keys.server_side_only",
        "API calls requiring your Flutterwave Secret Key should never be initiated from a Client (browser/mobile app).",
        "only Sika's server calls Flutterwave; no page carries the secret key (flutterwave crate, http/)",
    ),
    (
        "auth.password_policy",
        "Ensure a strong password policy is enforced e.g. minimum of 8 alphanumeric characters, an upper case, a special character",
        "12 to 128 characters with upper, lower, digit and special; argon2id (crypto/password.rs)",
    ),
    (
        "auth.login_validation",
        "Input validation is in place during login",
        "e-mail shape and length, password and code lengths are checked before any lookup (auth/login.rs)",
    ),
    (
        "sessions.cookie_only",
        "Any session tokens must be stored within session cookies and transported only within HTTP cookie headers",
        "the session token travels only in a __Host- cookie without Max-Age; never in a URL or a page (auth/session.rs)",
    ),
    ("sessions.single", "Deny concurrent sessions", "a new sign-in ends the user's other session (auth/session.rs)"),
    (
        "sessions.random_tokens",
        "Ensure session tokens are generated using a Random Number Generator (RNG) cryptographic provider",
        "256-bit tokens from the OS's CSPRNG, stored hashed (crypto/random.rs)",
    ),
    (
        "sessions.logout",
        "A clearly accessible button must exist which allows users to log out of the application, which in turn ends the session on the server",
        "a Log out button on every console page deletes the session row and clears the cookie (http/console/signin.rs)",
    ),
    (
        "sessions.logout_server_side",
        "Upon the user logging out, the user's session must be terminated server-side, and any client-side session tokens should be cleared and not cached on the user's machine",
        "logout deletes the session row, expires the cookie and sends Clear-Site-Data; pages are no-store (http/console/signin.rs)",
    ),
    (
        "sessions.invalidated_server_side",
        "Application sessions must be invalidated at the server-side",
        "sessions live in the database; idle, absolute, logout and a new sign-in end them there (store/sessions.rs)",
    ),
    (
        "sessions.tokens_destroyed",
        "Log out function must effectively destroy all session tokens and render them useless.",
        "an ended token is remembered as ended and refused even if replayed (store/sessions.rs)",
    ),
    (
        "errors.caught",
        "Ensure errors are “caught” and general error messages are shown to users in the worst case.",
        "every error becomes a generic page or JSON body; a panic is caught per request and answered 500 (http/error.rs, http/mod.rs)",
    ),
    (
        "output.encoded",
        "All output back should be encoded",
        "askama escapes every value in pages; JSON is serialised, never concatenated (templates/, http/)",
    ),
    (
        "data.minimised",
        "Limit the use and storage of sensitive data - Ensure sensitive data are not unnecessarily transported and stored.",
        "accounts masked, e-mails found through keyed blind indexes, card numbers never stored (store/, domain/)",
    ),
    (
        "audit.sensitive_reads",
        "Log all access to sensitive data",
        "reading customers, users, accounts and the audit log is itself audited (AppState::audited fails closed)",
    ),
    (
        "input.allow_lists",
        "Create a whitelist of acceptable characters to be used by the application",
        "references, narrations, names and codes are checked against allow-lists (domain/validate.rs)",
    ),
    (
        "input.uploads",
        "Ensure proper validation is done for files that are uploaded",
        "only the payout CSV is uploaded: multipart on that route alone, size-capped, every row checked before anything is created",
    ),
    (
        "sql.parameterized",
        "Use parameterized SQL queries",
        "every value is bound; SQL text is made only of literals (store/)",
    ),
];
