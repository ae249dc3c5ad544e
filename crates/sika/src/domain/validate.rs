//! Server-side validation of what people type: allowlisted characters and lengths.

/// A normalized (lower-case) e-mail address, or why not.
pub fn email(input: &str) -> Result<String, &'static str> {
    let e = input.trim().to_ascii_lowercase();
    if e.is_empty() || e.len() > 254 {
        return Err("Enter an e-mail address of at most 254 characters.");
    }
    let Some((local, domain)) = e.split_once('@') else { return Err("Enter a valid e-mail address.") };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if local_ok && domain_ok { Ok(e) } else { Err("Enter a valid e-mail address.") }
}

/// A person's display name: letters, spaces and a few punctuation marks, ≤ 100 characters.
pub fn name(input: &str) -> Result<String, &'static str> {
    let n = input.trim();
    if n.chars().count() > 100 {
        return Err("The name must be at most 100 characters.");
    }
    if !n.chars().all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '\'' || c == '.') {
        return Err("The name may contain letters, spaces, hyphens, apostrophes and dots only.");
    }
    Ok(n.to_string())
}

/// A one-time code as typed: six digits, or a recovery code `xxxxx-xxxxx`.
pub fn otp(input: &str) -> Option<String> {
    let t: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    let ok = (t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()))
        || (t.len() == 11
            && t.as_bytes()[5] == b'-'
            && t.bytes().filter(|b| *b != b'-').all(|b| b.is_ascii_alphanumeric()));
    ok.then(|| t.to_ascii_lowercase())
}

/// An API key's name: letters, digits, spaces, `-_.`, 1 to 64 characters.
pub fn label(input: &str) -> Result<String, &'static str> {
    let n = input.trim();
    if n.is_empty() || n.chars().count() > 64 {
        return Err("The name must be 1 to 64 characters.");
    }
    if !n.chars().all(|c| c.is_ascii_alphanumeric() || " -_.".contains(c)) {
        return Err("The name may contain letters, digits, spaces and - _ . only.");
    }
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" Ada.Lovelace+x@Example.COM ").unwrap(), "ada.lovelace+x@example.com");
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.c",
            "<script>@x.y",
            "a b@c.d",
            ".a@b.c",
            "a..b@c.d",
            "a@-b.c",
            "a@b..c",
            &format!("{}@b.c", "a".repeat(65)),
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn otps_and_names() {
        assert_eq!(otp(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(otp("ABCDE-12345").as_deref(), Some("abcde-12345"));
        for bad in ["12345", "1234567", "abcdef", "abcde_12345", "<b>"] {
            assert!(otp(bad).is_none(), "{bad}");
        }
        assert!(name("Ada O'Neill-Lovelace").is_ok());
        assert!(name("<script>").is_err());
        assert!(label("shop backend-1").is_ok() && label("x;drop").is_err());
    }
}
