//! Paging for the console's short lists (users, API keys): a cursor that
//! names the last row shown (its creation time and id), never an offset, so
//! a row added meanwhile neither repeats nor hides one.

use serde::Deserialize;

/// Rows on one page of users or keys.
pub const PAGE: i64 = 50;

/// `?cursor=` (and, for users, `?email=`) as typed in the address bar.
#[derive(Deserialize, Default, Clone)]
pub struct PageQuery {
    #[serde(default)]
    pub cursor: String,
    #[serde(default)]
    pub email: String,
}

impl PageQuery {
    /// The cursor, if it is one we could have written; anything else is the first page.
    pub fn after(&self) -> Option<(i64, String)> {
        let (at, id) = self.cursor.split_once('.')?;
        let at = at.parse::<i64>().ok().filter(|a| *a >= 0)?;
        let id_ok =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        id_ok.then(|| (at, id.to_string()))
    }

    /// The e-mail searched for, trimmed; `None` when the box is empty.
    pub fn email(&self) -> Option<&str> {
        Some(self.email.trim()).filter(|e| !e.is_empty())
    }
}

/// The cursor of the page after `rows`, when one more row than a page was read.
pub fn next_cursor<T>(rows: &mut Vec<T>, key: impl Fn(&T) -> (i64, &str)) -> Option<String> {
    if rows.len() as i64 <= PAGE {
        return None;
    }
    rows.truncate(PAGE as usize);
    rows.last().map(|r| {
        let (at, id) = key(r);
        format!("{at}.{id}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cursor_we_could_have_written_is_read() {
        let q = |c: &str| PageQuery { cursor: c.into(), ..PageQuery::default() }.after();
        assert_eq!(q("1795000000000.ab12_-"), Some((1_795_000_000_000, "ab12_-".into())));
        for bad in ["", "x.ab", "-1.ab", "12.", "12.a b", "12.a'--", &format!("12.{}", "a".repeat(65))] {
            assert_eq!(q(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_next_page_exists_only_past_a_full_page() {
        let mut rows: Vec<(i64, String)> = (0..PAGE).map(|i| (i, format!("id{i}"))).collect();
        assert_eq!(next_cursor(&mut rows, |r| (r.0, &r.1)), None);
        rows.push((PAGE, "last".into()));
        assert_eq!(next_cursor(&mut rows, |r| (r.0, &r.1)), Some(format!("{}.id{}", PAGE - 1, PAGE - 1)));
        assert_eq!(rows.len() as i64, PAGE);
    }
}
