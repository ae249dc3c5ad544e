//! One helper for the console's and the API's paged lists: it joins only the
//! conditions a person actually set, so the database can use the index that
//! fits (a fixed `($1 IS NULL OR …)` text hides every index from the
//! planner). Every clause is a literal written in this crate and every value
//! is bound; nothing typed by a person ever reaches the SQL text.

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

/// A value to bind.
#[derive(Debug, Clone)]
pub(super) enum Value {
    Text(String),
    Int(i64),
}

/// Conditions joined with AND. Each clause marks its values with `?`, which
/// become numbered placeholders (`$1`, `$2`, …) understood by both backends.
#[derive(Debug, Default)]
pub(super) struct Where {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Where {
    /// Adds `clause` (a literal; `?` for each value, in order).
    pub(super) fn and(&mut self, clause: &'static str, values: impl IntoIterator<Item = Value>) {
        let values: Vec<Value> = values.into_iter().collect();
        debug_assert_eq!(clause.matches('?').count(), values.len(), "one value for each `?`");
        let mut sql = String::with_capacity(clause.len() + 8);
        let mut n = self.values.len();
        for part in clause.split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(head) => {
                    n += 1;
                    sql.push_str(head);
                    sql.push_str(&format!("${n}"));
                }
                None => sql.push_str(part),
            }
        }
        self.values.extend(values);
        self.clauses.push(sql);
    }

    /// `clause` with `value`, when there is one (a status, a currency…).
    pub(super) fn and_some(&mut self, clause: &'static str, value: Option<&str>) {
        if let Some(v) = value {
            self.and(clause, [Value::Text(v.to_string())]);
        }
    }

    /// Created at or after `from` and before `to` (milliseconds), each when set.
    pub(super) fn created_between(&mut self, from: Option<i64>, to: Option<i64>) {
        if let Some(from) = from {
            self.and("created_at >= ?", [Value::Int(from)]);
        }
        if let Some(to) = to {
            self.and("created_at < ?", [Value::Int(to)]);
        }
    }

    /// Rows older than the cursor (the last row shown), newest first.
    pub(super) fn after_cursor(&mut self, after: Option<&(i64, String)>) {
        if let Some((at, reference)) = after {
            self.and(
                "(created_at < ? OR (created_at = ? AND reference < ?))",
                [Value::Int(*at), Value::Int(*at), Value::Text(reference.clone())],
            );
        }
    }

    /// `select` with these conditions, newest first, limited by one more bound value.
    pub(super) fn newest_first(&self, select: &str) -> String {
        format!("{select} {} ORDER BY created_at DESC, reference DESC LIMIT {}", self.sql(), self.next_placeholder())
    }

    /// `WHERE a AND b …`, or nothing.
    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!("WHERE {}", self.clauses.join(" AND ")) }
    }

    /// The next free placeholder number (for a LIMIT after the conditions).
    pub(super) fn next_placeholder(&self) -> String {
        format!("${}", self.values.len() + 1)
    }

    /// Binds every value, in order.
    pub(super) fn bind<'q>(&self, mut query: Query<'q, Any, AnyArguments<'q>>) -> Query<'q, Any, AnyArguments<'q>> {
        for v in &self.values {
            query = match v {
                Value::Text(s) => query.bind(s.clone()),
                Value::Int(n) => query.bind(*n),
            };
        }
        query
    }
}

/// A substring pattern for LIKE … ESCAPE '\': `_` and `%` typed by a person
/// are literal, not wildcards.
pub(super) fn contains_pattern(fragment: &str) -> String {
    format!("%{}%", fragment.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_clauses_in_order() {
        let mut w = Where::default();
        assert_eq!(w.sql(), "");
        w.and("status = ?", [Value::Text("paid".into())]);
        w.and(
            "(created_at < ? OR (created_at = ? AND reference < ?))",
            [Value::Int(5), Value::Int(5), Value::Text("r".into())],
        );
        assert_eq!(w.sql(), "WHERE status = $1 AND (created_at < $2 OR (created_at = $3 AND reference < $4))");
        assert_eq!(w.next_placeholder(), "$5");
        assert!(matches!(&w.values[0], Value::Text(s) if s == "paid"));
        assert!(matches!(&w.values[3], Value::Text(s) if s == "r"));
    }

    #[test]
    fn wildcards_typed_by_a_person_are_literal() {
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
