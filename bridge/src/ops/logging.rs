//! STUB
pub fn init_logging(_c: &crate::config::LogConfig) {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
}
