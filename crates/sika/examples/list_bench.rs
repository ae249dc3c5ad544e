//! How the payments list holds up on a large table: seeds N checkouts
//! (default 100,000; `SIKA_BENCH_ROWS`) into a fresh SQLite database (and a
//! fresh PostgreSQL one when `SIKA_TEST_POSTGRES_URL` is set), then prints
//! the median time of one page (50 rows and the total) for each kind of
//! filter the console and `GET /api/v1/checkouts` use.
//!   cargo run --release -p sika --example list_bench
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use sika::domain::{CheckoutStatus, Currency};
use sika::secret::Secret;
use sika::store::{CheckoutQuery, Store};

const DAY: i64 = 86_400_000;

async fn seed(store: &Store, rows: usize, now: i64) {
    let statuses = ["paid", "paid", "paid", "pending", "failed", "cancelled", "needs_review"];
    let currencies = ["NGN", "NGN", "KES", "GHS", "USD"];
    for chunk in 0..rows.div_ceil(500) {
        let mut tx = store.pool_for_tests().begin().await.unwrap();
        for i in chunk * 500..((chunk + 1) * 500).min(rows) {
            let created = now - (i as i64 % 90) * DAY - (i as i64 % 86_400) * 1000;
            sqlx::query(
                "INSERT INTO checkouts (reference, fingerprint, amount, currency, email_enc, status, api_key_id, \
                 created_at, updated_at, email_index, transaction_id, paid_amount) \
                 VALUES ($1, 'f', '1500.50', $2, 'sealed', $3, 'bench', $4, $4, $5, $6, $7)",
            )
            .bind(format!("order-{i:07}"))
            .bind(currencies[i % currencies.len()])
            .bind(statuses[i % statuses.len()])
            .bind(created)
            .bind(format!("idx-{}", i % 20_000))
            .bind(1_000_000 + i as i64)
            .bind(if i % 7 < 3 { Some("1500.50") } else { None })
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
}

async fn median(store: &Store, q: &CheckoutQuery) -> (Duration, i64, usize) {
    let mut times = Vec::new();
    let mut last = (0, 0);
    for _ in 0..15 {
        let t = Instant::now();
        let (rows, total) = store.checkouts_page(q).await.unwrap();
        times.push(t.elapsed());
        last = (total, rows.len());
    }
    times.sort();
    (times[times.len() / 2], last.0, last.1)
}

async fn run(label: &str, url: String, rows: usize) {
    let store = Store::connect(&Secret::new(url)).await.unwrap();
    store.migrate().await.unwrap();
    let now = sika::store::now_ms();
    let t = Instant::now();
    seed(&store, rows, now).await;
    println!("\n{label}: {rows} checkouts seeded in {:.1} s", t.elapsed().as_secs_f64());
    let page = |q: CheckoutQuery| CheckoutQuery { limit: 51, ..q };
    // The cursor of a page far down the list.
    let deep = store
        .checkouts_page(&page(CheckoutQuery { limit: 5_001, ..Default::default() }))
        .await
        .unwrap()
        .0
        .last()
        .map(|r| (r.created_at, r.reference.clone()));
    let cases: Vec<(&str, CheckoutQuery)> = vec![
        ("first page, no filter", page(CheckoutQuery::default())),
        ("status = paid", page(CheckoutQuery { status: Some(CheckoutStatus::Paid), ..Default::default() })),
        (
            "currency = KES, last 7 days",
            page(CheckoutQuery { currency: Some(Currency::KES), from_ms: Some(now - 7 * DAY), ..Default::default() }),
        ),
        (
            "reference fragment (full scan)",
            page(CheckoutQuery { reference_contains: Some("12345".into()), ..Default::default() }),
        ),
        (
            "customer e-mail (blind index)",
            page(CheckoutQuery { email_indexes: vec!["idx-777".into()], ..Default::default() }),
        ),
        ("transaction id", page(CheckoutQuery { transaction_id: Some(1_050_000), ..Default::default() })),
        ("page 100 (cursor)", page(CheckoutQuery { after: deep, ..Default::default() })),
    ];
    println!("| query | median | total | rows |\n|---|---|---|---|");
    for (name, q) in cases {
        let (d, total, n) = median(&store, &q).await;
        println!("| {name} | {:.2} ms | {total} | {n} |", d.as_secs_f64() * 1000.0);
    }
}

#[tokio::main]
async fn main() {
    let rows = std::env::var("SIKA_BENCH_ROWS").ok().and_then(|r| r.parse().ok()).unwrap_or(100_000);
    let dir = tempfile_dir();
    run("SQLite", format!("sqlite://{}/bench.db", dir.display()), rows).await;
    if let Ok(admin) = std::env::var("SIKA_TEST_POSTGRES_URL") {
        let name = format!("sika_bench_{}", sika::crypto::random::hex_id());
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut c).await.unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        run("PostgreSQL", url.to_string(), rows).await;
        sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut c).await.unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sika-list-bench-{}", sika::crypto::random::hex_id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
