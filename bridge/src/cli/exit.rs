//! The exit statuses of the commands beyond 0 (success), in a leaf that `cli.rs` and
//! each command's file use, so a command's file never reaches back into `cli.rs`.

/// Exit status when the configuration is refused.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status when `publish` fails.
pub const EXIT_PUBLISH: u8 = 1;
