//! `--cluster`: the Redis the bridges share, started by this tool on a free loopback
//! port (no persistence, a temporary directory), and what it did during a run: its
//! `INFO stats` / `INFO commandstats` counters and its CPU, read before the first
//! publish and after the drain.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::server::{command, cpu_seconds, free_port};

/// A `redis-server` child, killed (and its directory removed) when dropped.
pub struct RedisServer {
    child: Child,
    pub pid: u32,
    pub port: u16,
    dir: PathBuf,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    /// Starts `program` (`redis-server`) on a free port; returns once it answers PING.
    pub fn start(program: &str, cpu: Option<usize>) -> Result<RedisServer, String> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "push-bridge-bench-{}-redis-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log = std::fs::File::create(dir.join("redis.log"))
            .map_err(|e| format!("redis log file: {e}"))?;
        let mut command = command(Path::new(program), cpu);
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| format!("redis log file: {e}"))?,
            )
            .stderr(log);
        let child = command.spawn().map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            format!("cannot start {program} (needed by --cluster): {e}")
        })?;
        let mut server = RedisServer {
            pid: child.id(),
            child,
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if matches!(query(port, &["PING"]), Ok(reply) if reply == "PONG") {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(server.dir.join("redis.log")).unwrap_or_default();
                return Err(format!(
                    "{program} exited with {status} during start:\n{}",
                    log.trim_end()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("{program} did not answer PING within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Its counters and CPU now.
    pub fn snapshot(&self) -> Result<Snapshot, String> {
        let request = encode(&["INFO", "stats", "commandstats"]);
        let mut stream = connect(self.port)?;
        stream
            .write_all(&request)
            .map_err(|e| format!("redis INFO: {e}"))?;
        let reply = read_reply(&mut BufReader::new(stream))?;
        let mut snapshot = Snapshot::parse(&reply);
        snapshot.request_bytes = request.len() as u64;
        snapshot.reply_bytes = reply_len(&reply);
        snapshot.cpu_s = cpu_seconds(self.pid);
        Ok(snapshot)
    }
}

/// One reading of Redis's counters.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub commands: u64,
    pub net_in: u64,
    pub net_out: u64,
    /// Per command: calls, µs.
    pub per_command: BTreeMap<String, (u64, u64)>,
    pub cpu_s: Option<f64>,
    /// The INFO request and its reply, as counted by Redis's network totals.
    request_bytes: u64,
    reply_bytes: u64,
}

impl Snapshot {
    fn parse(info: &str) -> Snapshot {
        let mut s = Snapshot::default();
        for line in info.lines() {
            let Some((key, value)) = line.trim().split_once(':') else {
                continue;
            };
            match key {
                "total_commands_processed" => s.commands = value.parse().unwrap_or(0),
                "total_net_input_bytes" => s.net_in = value.parse().unwrap_or(0),
                "total_net_output_bytes" => s.net_out = value.parse().unwrap_or(0),
                _ => {
                    let Some(name) = key.strip_prefix("cmdstat_") else {
                        continue;
                    };
                    let field = |f: &str| {
                        value.split(',').find_map(|kv| {
                            let (k, v) = kv.split_once('=')?;
                            (k == f).then(|| v.parse::<u64>().ok())?
                        })
                    };
                    s.per_command.insert(
                        name.to_string(),
                        (field("calls").unwrap_or(0), field("usec").unwrap_or(0)),
                    );
                }
            }
        }
        s
    }
}

/// What Redis did between two snapshots, less the first snapshot's own INFO.
#[derive(Debug, Clone, Default)]
pub struct RedisDelta {
    /// Commands processed, those run by scripts included.
    pub commands: u64,
    pub net_in: u64,
    pub net_out: u64,
    pub cpu_s: Option<f64>,
    /// Per command (INFO excluded): calls, µs inside Redis (a script's µs include its
    /// commands'), most calls first.
    pub per_command: Vec<(String, u64, u64)>,
}

impl RedisDelta {
    /// `before`'s INFO is counted in `after` (command, reply bytes) and `after`'s
    /// request is counted in it too: all three are taken out.
    pub fn between(before: &Snapshot, after: &Snapshot) -> RedisDelta {
        let mut per_command: Vec<(String, u64, u64)> = after
            .per_command
            .iter()
            .filter(|(name, _)| name.as_str() != "info")
            .filter_map(|(name, &(calls, usec))| {
                let (c0, u0) = before.per_command.get(name).copied().unwrap_or((0, 0));
                let calls = calls.saturating_sub(c0);
                (calls > 0).then(|| (name.clone(), calls, usec.saturating_sub(u0)))
            })
            .collect();
        per_command.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        RedisDelta {
            commands: after.commands.saturating_sub(before.commands + 1),
            net_in: after
                .net_in
                .saturating_sub(before.net_in + after.request_bytes),
            net_out: after
                .net_out
                .saturating_sub(before.net_out + before.reply_bytes),
            cpu_s: match (before.cpu_s, after.cpu_s) {
                (Some(b), Some(a)) => Some(a - b),
                _ => None,
            },
            per_command,
        }
    }
}

fn connect(port: u16) -> Result<TcpStream, String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("redis at {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| format!("redis: {e}"))?;
    Ok(stream)
}

/// One command, RESP-encoded.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// The bytes of a bulk-string reply holding `text` (what Redis counts as output).
fn reply_len(text: &str) -> u64 {
    (format!("${}\r\n", text.len()).len() + text.len() + 2) as u64
}

/// Sends one command and returns its simple- or bulk-string reply.
fn query(port: u16, args: &[&str]) -> Result<String, String> {
    let mut stream = connect(port)?;
    stream
        .write_all(&encode(args))
        .map_err(|e| format!("redis: {e}"))?;
    read_reply(&mut BufReader::new(stream))
}

fn read_reply(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("redis reply: {e}"))?;
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'+') => Ok(line[1..].to_string()),
        Some(b'$') => {
            let len: usize = line[1..]
                .parse()
                .map_err(|_| format!("redis reply: {line:?}"))?;
            let mut body = vec![0u8; len + 2];
            reader
                .read_exact(&mut body)
                .map_err(|e| format!("redis reply: {e}"))?;
            body.truncate(len);
            String::from_utf8(body).map_err(|_| "redis reply: not UTF-8".to_string())
        }
        _ => Err(format!("redis reply: {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_parsed_and_the_probe_taken_out() {
        let before = Snapshot {
            request_bytes: 40,
            reply_bytes: 1000,
            ..Snapshot::parse(
                "# Stats\r\ntotal_commands_processed:10\r\ntotal_net_input_bytes:100\r\n\
                 total_net_output_bytes:200\r\n# Commandstats\r\n\
                 cmdstat_info:calls=1,usec=20,usec_per_call=20.00,rejected_calls=0,failed_calls=0\r\n\
                 cmdstat_xread:calls=5,usec=50,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n",
            )
        };
        assert_eq!(before.commands, 10);
        assert_eq!(before.per_command["xread"], (5, 50));
        let after = Snapshot {
            request_bytes: 40,
            reply_bytes: 1000,
            ..Snapshot::parse(
                "total_commands_processed:31\r\ntotal_net_input_bytes:1140\r\n\
                 total_net_output_bytes:5200\r\n\
                 cmdstat_info:calls=2,usec=40,usec_per_call=20.00\r\n\
                 cmdstat_xread:calls=15,usec=150,usec_per_call=10.00\r\n\
                 cmdstat_evalsha:calls=10,usec=900,usec_per_call=90.00\r\n",
            )
        };
        let d = RedisDelta::between(&before, &after);
        assert_eq!(d.commands, 20);
        assert_eq!(d.net_in, 1000);
        assert_eq!(d.net_out, 4000);
        assert_eq!(
            d.per_command,
            vec![
                ("evalsha".to_string(), 10, 900),
                ("xread".to_string(), 10, 100)
            ]
        );
    }

    #[test]
    fn commands_are_resp_encoded() {
        assert_eq!(encode(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(reply_len("abc"), 9);
    }
}
