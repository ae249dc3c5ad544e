//! Finding payments: the filters the console and the API share, one search
//! box (a reference fragment, a transaction id, or a customer's exact
//! e-mail through its blind index), and opaque cursors for paging.

use crate::domain::{CheckoutStatus, Currency};
use crate::store::{CheckoutQuery, CheckoutRow, StoreError};

use super::Payments;

/// The most rows one page (or one export) holds.
pub const MAX_PAGE: i64 = 200;
pub const MAX_EXPORT: usize = 50_000;

/// A list request, already checked.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<CheckoutStatus>,
    pub currency: Option<Currency>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// A reference fragment, a transaction id, or an e-mail address.
    pub search: String,
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

/// Where the previous page stopped: the last row's creation time and reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub reference: String,
}

impl Cursor {
    /// `1795000000000.order-1` (a reference never holds a dot).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.reference)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let (at, reference) = s.split_once('.')?;
        let created_at = at.parse::<i64>().ok().filter(|a| *a >= 0)?;
        crate::domain::checkout::reference(reference).ok()?;
        Some(Cursor { created_at, reference: reference.to_string() })
    }
}

/// One page and how many match in all.
#[derive(Debug)]
pub struct ListPage {
    pub rows: Vec<CheckoutRow>,
    pub total: i64,
    pub next: Option<Cursor>,
}

/// Keeps what a search box may hold: printable, at most 254 characters.
pub fn clean_search(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(254).collect::<String>().trim().to_string()
}

impl Payments {
    fn query(&self, f: &ListFilter) -> CheckoutQuery {
        let search = clean_search(&f.search);
        let mut q = CheckoutQuery {
            status: f.status,
            currency: f.currency,
            from_ms: f.from_ms,
            to_ms: f.to_ms,
            after: f.cursor.as_ref().map(|c| (c.created_at, c.reference.clone())),
            limit: f.limit.clamp(1, MAX_PAGE) + 1,
            ..CheckoutQuery::default()
        };
        if search.contains('@') {
            // An e-mail is matched exactly, through its keyed index; one that
            // is not a valid address matches nothing.
            q.email_indexes = match crate::domain::validate::email(&search) {
                Ok(e) => self.customer_email_indexes(&e),
                Err(_) => vec!["no-such-address".into()],
            };
        } else if !search.is_empty() {
            if search.bytes().all(|b| b.is_ascii_digit()) {
                q.transaction_id = search.parse().ok();
            }
            // A reference holds letters, digits, _ and - only; anything else matches nothing.
            q.reference_contains =
                Some(search.chars().filter(|c| c.is_ascii_alphanumeric() || "_-".contains(*c)).collect())
                    .filter(|r: &String| r.len() == search.len());
            if q.reference_contains.is_none() && q.transaction_id.is_none() {
                q.reference_contains = Some("~".into()); // no reference holds a tilde
            }
        }
        q
    }

    /// One page of payments, newest first.
    pub async fn list(&self, f: &ListFilter) -> Result<ListPage, StoreError> {
        let q = self.query(f);
        let (mut rows, total) = self.store.checkouts_page(&q).await?;
        let want = usize::try_from(q.limit - 1).unwrap_or(0);
        let next = if rows.len() > want {
            rows.truncate(want);
            rows.last().map(|r| Cursor { created_at: r.created_at, reference: r.reference.clone() })
        } else {
            None
        };
        Ok(ListPage { rows, total, next })
    }

    /// Every payment the filter matches (up to [`MAX_EXPORT`]), page by page, for an export.
    pub async fn list_all(&self, f: &ListFilter) -> Result<Vec<CheckoutRow>, StoreError> {
        let mut f = ListFilter { limit: MAX_PAGE, cursor: None, ..f.clone() };
        let mut out = Vec::new();
        loop {
            let page = self.list(&f).await?;
            out.extend(page.rows);
            match page.next {
                Some(c) if out.len() < MAX_EXPORT => f.cursor = Some(c),
                _ => return Ok(out.into_iter().take(MAX_EXPORT).collect()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = Cursor { created_at: 1_795_000_000_000, reference: "order-1_a".into() };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for junk in ["", ".", "x.order", "-1.order", "1.", "1.a b", "1.a.b", "1.<script>"] {
            assert_eq!(Cursor::parse(junk), None, "{junk}");
        }
    }
}
