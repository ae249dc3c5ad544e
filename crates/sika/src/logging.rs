//! Structured JSON logs on stderr. `SIKA_LOG` sets the filter (default `info`).
//! Secrets are wrapped in [`crate::secret::Secret`], whose every rendering is masked.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("SIKA_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,rustls=warn,h2=warn,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .try_init();
    // A panic's text goes to the log (inside the request span when there is one),
    // never to a response.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic caught");
    }));
}
