//! Bulk payouts as CSV: the exact header, at most 1 MiB and 5,000 rows, UTF-8
//! with or without a BOM, no cell that a spreadsheet would run as a formula,
//! every error with its row number, and all or nothing. Also the safe way
//! out: [`cell`] makes any text safe to put in an exported CSV.

use rust_decimal::Decimal;

use super::payout::{BeneficiaryRequest, NewPayout, PayoutRequest};

pub const HEADER: [&str; 10] = [
    "reference",
    "amount",
    "currency",
    "country",
    "bank_code",
    "account_number",
    "name",
    "type",
    "branch_code",
    "narration",
];
pub const MAX_BYTES: usize = 1024 * 1024;
pub const MAX_ROWS: usize = 5_000;

/// A problem with the file or one of its rows (row 1 is the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: usize,
    pub message: String,
}

fn at(row: usize, message: impl Into<String>) -> RowError {
    RowError { row, message: message.into() }
}

/// Splits CSV text into records (RFC 4180: quoted fields, doubled quotes, CRLF or LF).
fn records(text: &str) -> Result<Vec<Vec<String>>, RowError> {
    let mut out = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut row = 1;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, '"') => return Err(at(row, "a quote inside an unquoted cell")),
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut record));
                row += 1;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(at(row, "a quoted cell is never closed"));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        out.push(record);
    }
    Ok(out)
}

/// Parses and validates a whole file: every row's payout, or every error.
pub fn parse(bytes: &[u8], max_amount: Decimal) -> Result<Vec<NewPayout>, Vec<RowError>> {
    if bytes.len() > MAX_BYTES {
        return Err(vec![at(0, format!("the file is larger than {} KiB", MAX_BYTES / 1024))]);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(text) = std::str::from_utf8(bytes) else { return Err(vec![at(0, "the file is not UTF-8 text")]) };
    if text.contains('\0') {
        return Err(vec![at(0, "the file is not text")]);
    }
    let records = records(text).map_err(|e| vec![e])?;
    let Some((header, rows)) = records.split_first() else { return Err(vec![at(1, "the file is empty")]) };
    if header.iter().map(String::as_str).ne(HEADER) {
        return Err(vec![at(1, format!("the header must be exactly: {}", HEADER.join(",")))]);
    }
    let rows: Vec<&Vec<String>> = rows.iter().filter(|r| !(r.len() == 1 && r[0].trim().is_empty())).collect();
    if rows.is_empty() {
        return Err(vec![at(2, "there are no payouts in the file")]);
    }
    if rows.len() > MAX_ROWS {
        return Err(vec![at(MAX_ROWS + 2, format!("at most {MAX_ROWS} payouts in one file"))]);
    }
    let mut errors = Vec::new();
    let mut payouts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, r) in rows.iter().enumerate() {
        let row = i + 2;
        if r.len() != HEADER.len() {
            errors.push(at(row, format!("{} cells instead of {}", r.len(), HEADER.len())));
            continue;
        }
        if let Some((name, _)) = HEADER.iter().zip(r.iter()).find(|(_, c)| formula(c)) {
            errors.push(at(row, format!("{name}: a cell may not start with = + - @ (spreadsheet formulas)")));
            continue;
        }
        let opt = |s: &String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let Some(amount) = flutterwave::Amount::parse(r[1].trim()) else {
            errors.push(at(row, "amount: enter a number such as 1500.50"));
            continue;
        };
        let req = PayoutRequest {
            reference: r[0].trim().to_string(),
            amount,
            currency: r[2].clone(),
            narration: opt(&r[9]),
            beneficiary: Some(BeneficiaryRequest {
                country: opt(&r[3]),
                bank_code: r[4].clone(),
                account_number: r[5].clone(),
                name: opt(&r[6]),
                kind: opt(&r[7]),
                branch_code: opt(&r[8]),
            }),
            beneficiary_id: None,
            bank_code: None,
            account_number: None,
            beneficiary_name: None,
            meta: None,
        };
        match req.validate(max_amount) {
            Ok(p) if !seen.insert(p.reference.clone()) => {
                errors.push(at(row, format!("reference: {} appears twice in the file", p.reference)));
            }
            Ok(p) => payouts.push(p),
            Err(e) => errors.push(at(row, format!("{}: {}", e.field, e.message))),
        }
    }
    if errors.is_empty() { Ok(payouts) } else { Err(errors) }
}

pub use super::csv::cell;
use super::csv::formula;

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "reference,amount,currency,country,bank_code,account_number,name,type,branch_code,narration\n";

    fn max() -> Decimal {
        Decimal::from(1_000_000)
    }

    #[test]
    fn a_good_file_with_a_bom_quotes_and_crlf() {
        let text = format!(
            "\u{feff}{}b-1,1500.50,NGN,NG,044,0690000032,Forrest Green,,,\"Invoice 7, March\"\r\nb-2,10,KES,KE,MPS,254709929220,Ann W,MOBILEMONEY,,\r\n",
            HEAD.replace('\n', "\r\n")
        );
        let p = parse(text.as_bytes(), max()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].narration.as_deref(), Some("Invoice 7, March"));
    }

    #[test]
    fn every_error_with_its_row_and_nothing_on_any() {
        let text = format!(
            "{HEAD}ok-1,100,NGN,NG,044,0690000032,,,,\n=cmd|' /C calc'!A0,1,NGN,NG,044,0690000032,,,,\nx-2,-5,NGN,NG,044,0690000032,,,,\nx-3,5,NGN,NG,044,12ab,,,,\nok-1,100,NGN,NG,044,0690000032,,,,\nx-5,5,NGN\nx-6,5,GHS,GH,GH280100,0031625807099,Kofi,,,\n"
        );
        let errors = parse(text.as_bytes(), max()).unwrap_err();
        let rows: Vec<usize> = errors.iter().map(|e| e.row).collect();
        assert_eq!(rows, [3, 4, 5, 6, 7, 8], "{errors:?}");
        assert!(errors[0].message.contains("formula") && errors[1].message.contains("formula"));
        assert!(errors[3].message.contains("twice"));
        assert!(errors[5].message.contains("branch_code"));
    }

    #[test]
    fn the_file_itself_is_checked() {
        assert!(parse(b"reference,amount\nx,1\n", max()).unwrap_err()[0].message.contains("header"));
        assert!(parse(HEAD.as_bytes(), max()).unwrap_err()[0].message.contains("no payouts"));
        assert!(parse(&[0xff, 0xfe, 0x00], max()).unwrap_err()[0].message.contains("UTF-8"));
        assert!(parse(&vec![b'a'; MAX_BYTES + 1], max()).unwrap_err()[0].message.contains("larger"));
        let many: String = (0..=MAX_ROWS).map(|i| format!("r{i},1,NGN,NG,044,0690000032,,,,\n")).collect();
        assert!(parse(format!("{HEAD}{many}").as_bytes(), max()).unwrap_err()[0].message.contains("at most"));
        assert!(parse(format!("{HEAD}\"open,1").as_bytes(), max()).is_err());
    }
}
