//! The shape the code promises, checked on its source: the proof that someone
//! typed a fresh step-up code is made only by `auth`; `domain` imports no I/O
//! layer; nothing below `http` reaches up into it; money sums never skip a row
//! they cannot read.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/"), text)
        })
        .collect()
}

/// The part of a file that ships: everything before its `#[cfg(test)]` module.
fn shipped(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn only_auth_proves_a_fresh_step_up_code() {
    let found: Vec<String> = src()
        .into_iter()
        .filter(|(path, text)| shipped(text).contains("SteppedUp for") && !path.starts_with("auth/"))
        .map(|(path, _)| path)
        .collect();
    assert!(found.is_empty(), "a step-up proof outside auth: {found:?}");
    let auth = src().into_iter().filter(|(p, t)| p.starts_with("auth/") && t.contains("SteppedUp for")).count();
    assert_eq!(auth, 1, "auth makes exactly one kind of proof");
}

#[test]
fn domain_imports_no_io_layer() {
    let layers = [
        "crate::store",
        "crate::http",
        "crate::auth",
        "crate::payments",
        "crate::payouts",
        "crate::cards",
        "sqlx",
        "reqwest",
        "axum",
        "tokio",
        "flutterwave::Client",
        "std::fs",
        "std::net",
    ];
    for (path, text) in src().into_iter().filter(|(p, _)| p.starts_with("domain/")) {
        for layer in layers {
            assert!(!shipped(&text).contains(layer), "domain/{path} uses {layer}");
        }
    }
}

#[test]
fn nothing_below_http_imports_it() {
    let found: Vec<String> = src()
        .into_iter()
        .filter(|(path, text)| {
            !path.starts_with("http/") && path != "gateway.rs" && shipped(text).contains("crate::http")
        })
        .map(|(path, _)| path)
        .collect();
    assert!(found.is_empty(), "modules below http that import it: {found:?}");
}

#[test]
fn money_sums_do_not_skip_unreadable_rows() {
    for (path, text) in src().into_iter().filter(|(p, _)| p.starts_with("store/")) {
        let compact: String = shipped(&text).split_whitespace().collect();
        assert!(
            !compact.contains("parse::<Decimal>().ok()).sum"),
            "store/{path} sums amounts and skips those it cannot read"
        );
    }
}

#[test]
fn handlers_call_services_not_the_store() {
    // The application's own handle serves only the readiness probe and the metrics scrape.
    let allowed = ["http/pages.rs", "http/metrics.rs", "http/mod.rs"];
    for (path, text) in src().into_iter().filter(|(p, _)| p.starts_with("http/") && !allowed.contains(&p.as_str())) {
        let shipped = shipped(&text);
        for reach in ["state.store", ".store."] {
            assert!(!shipped.contains(reach), "{path} reaches into the store ({reach})");
        }
        let names_the_store = shipped
            .match_indices("store::Store")
            .any(|(i, m)| !shipped[i + m.len()..].starts_with(|c: char| c.is_alphanumeric()));
        assert!(!names_the_store, "{path} takes the store itself");
    }
}

#[test]
fn console_handlers_prove_the_role_by_type_and_fail_with_question_marks() {
    for (path, text) in src().into_iter().filter(|(p, _)| p.starts_with("http/console/")) {
        let code: String =
            shipped(&text).lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let shipped = code.as_str();
        // The role (and a form's CSRF token) is proven by `Authorized<C>` / `AuthorizedForm<C, F>`.
        assert!(!shipped.contains("state.authorize("), "{path} checks the role by hand");
        // A store or auth failure is `?` into `ConsoleError`, not a copied match arm.
        assert!(!shipped.contains("return internal(e)"), "{path} repeats the internal-error arm");
        assert!(!shipped.contains("return Ok(internal("), "{path} repeats the internal-error arm");
    }
}
