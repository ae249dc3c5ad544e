//! Every CSV Sika writes (payments, payouts, the audit log) goes through
//! [`cell`]: a spreadsheet opening the export never runs a formula from it.

/// A cell a spreadsheet would evaluate: `=`, `+`, `-`, `@`, or a leading tab
/// or carriage return (which some spreadsheets skip before evaluating).
pub fn formula(cell: &str) -> bool {
    matches!(cell.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'))
}

/// One cell of an exported CSV: quoted, quotes doubled, and text a
/// spreadsheet would run as a formula prefixed with `'` so it stays text.
pub fn cell(text: &str) -> String {
    let safe = if formula(text) { format!("'{text}") } else { text.to_string() };
    format!("\"{}\"", safe.replace('"', "\"\""))
}

/// One CSV line (ending in `\n`) of escaped cells.
pub fn line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = cells.iter().map(|c| cell(c.as_ref())).collect::<Vec<_>>().join(",");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_cells_never_run_as_formulas() {
        assert_eq!(cell("=SUM(A1)"), "\"'=SUM(A1)\"");
        assert_eq!(cell("=cmd|' /C calc'!A0"), "\"'=cmd|' /C calc'!A0\"");
        for attack in ["+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=1", "=HYPERLINK(\"https://evil.example\")"] {
            assert!(cell(attack).starts_with("\"'"), "{attack:?}");
        }
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"", "quotes doubled");
        assert_eq!(cell("a,b\nc"), "\"a,b\nc\"", "commas and newlines stay inside the quotes");
        assert_eq!(cell("plain"), "\"plain\"");
        assert_eq!(cell(""), "\"\"");
        assert_eq!(cell("1500.50"), "\"1500.50\"", "numbers stay numbers");
        assert_eq!(line(&["a", "=b"]), "\"a\",\"'=b\"\n");
    }
}
