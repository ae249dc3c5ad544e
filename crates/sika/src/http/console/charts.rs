//! Charts drawn by Sika as SVG on the server: no script, no third-party
//! asset, nothing the CSP has to allow. Every text inside is escaped here.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::domain::Currency;
use crate::http::error::escape_html;

/// Markup built (and escaped) by this module, safe to put in a page as is.
#[derive(Debug, Clone)]
pub struct Svg(String);

impl std::fmt::Display for Svg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl askama::filters::HtmlSafe for Svg {}

const W: f64 = 720.0;
const H: f64 = 200.0;
const LEFT: f64 = 8.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 24.0;

/// A bar per bucket (`labels[i]`: what the bucket is), for one currency's amounts.
/// The chart names itself for screen readers and each bar says its figure on hover.
pub fn bars(id: &str, title: &str, currency: Currency, series: &[Decimal], labels: &[String]) -> Svg {
    let max = series.iter().copied().max().unwrap_or(Decimal::ZERO);
    let max_f = max.to_f64().unwrap_or(0.0).max(f64::MIN_POSITIVE);
    let n = series.len().max(1) as f64;
    let slot = (W - LEFT * 2.0) / n;
    let bar_w = (slot * 0.72).max(1.0);
    let plot_h = H - TOP - BOTTOM;
    let total: Decimal = series.iter().copied().sum();
    let id = escape_html(id);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{} {} in all; the highest bar is {} {}.</desc>",
        escape_html(title),
        currency,
        currency.format(total),
        currency,
        currency.format(max),
    );
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\"/>",
        y = H - BOTTOM,
        x2 = W - LEFT
    );
    for (i, v) in series.iter().enumerate() {
        let h = (v.to_f64().unwrap_or(0.0) / max_f * plot_h).clamp(0.0, plot_h);
        let h = if *v > Decimal::ZERO { h.max(1.5) } else { 0.0 };
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let y = H - BOTTOM - h;
        let label = labels.get(i).map(String::as_str).unwrap_or("");
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\"><title>{}: {} {}</title></rect>",
            escape_html(label),
            currency,
            currency.format(*v)
        );
    }
    // The first, middle and last buckets are named under the axis; the top figure above it.
    let picks = [0, labels.len() / 2, labels.len().saturating_sub(1)];
    for (k, i) in picks.iter().enumerate() {
        if k > 0 && picks[k - 1] == *i {
            continue;
        }
        if let Some(label) = labels.get(*i) {
            let x = LEFT + slot * (*i as f64) + slot / 2.0;
            let anchor = match k {
                0 => "start",
                1 => "middle",
                _ => "end",
            };
            let x = match k {
                0 => LEFT,
                1 => x,
                _ => W - LEFT,
            };
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                H - 6.0,
                escape_html(label)
            );
        }
    }
    let _ =
        write!(s, "<text x=\"{LEFT}\" y=\"14\">max {} {}</text></svg>", currency, escape_html(&currency.format(max)));
    Svg(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_highest_and_escape_labels() {
        let series = vec![Decimal::from(50), Decimal::ZERO, Decimal::from(100)];
        let labels = vec!["<b>a</b>".to_string(), "b".into(), "c".into()];
        let svg = bars("c1", "Collected <NGN>", Currency::NGN, &series, &labels).to_string();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("&lt;b&gt;a&lt;/b&gt;") && !svg.contains("<b>"), "labels are escaped");
        assert!(svg.contains("Collected &lt;NGN&gt;"));
        assert!(svg.contains("NGN 150.00 in all"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("height=\"154.0\""), "the highest bar fills the plot: {svg}");
        assert!(svg.contains("height=\"77.0\""), "half of it");
        assert!(svg.contains("height=\"0.0\""), "nothing, no bar");
        assert!(!svg.contains("script") && !svg.contains("style="), "nothing the CSP must allow");
        let empty = bars("c2", "none", Currency::UGX, &[], &[]).to_string();
        assert!(empty.contains("UGX 0 in all"));
    }
}
