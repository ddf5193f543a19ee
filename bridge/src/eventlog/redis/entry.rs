//! Reading the log's entries out of Redis replies: positions (`<ms>-<seq>` entry ids)
//! and the fields the append script writes (`e` epoch, `i` publisher id, `t` topic,
//! `d` data).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;

/// An entry id: where an entry is in the log. Ordered like the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub ms: u64,
    pub seq: u64,
}

impl Position {
    /// Before every entry (`0-0`).
    pub const START: Position = Position { ms: 0, seq: 0 };

    pub fn parse(text: &str) -> Option<Position> {
        let (ms, seq) = text.split_once('-')?;
        Some(Position {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The last position before this one.
    pub fn just_before(self) -> Position {
        match (self.ms, self.seq) {
            (0, 0) => Position::START,
            (ms, 0) => Position {
                ms: ms - 1,
                seq: u64::MAX,
            },
            (ms, seq) => Position { ms, seq: seq - 1 },
        }
    }

    /// When the entry was appended (by the Redis server's clock).
    pub fn time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.ms)
    }

    /// The position of entries appended at `time`, as `MINID` takes it.
    pub fn at(time: SystemTime) -> Position {
        let ms = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Position { ms, seq: 0 }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub position: Position,
    /// The event's id: the publisher's, or the entry id.
    pub id: String,
    pub epoch: String,
    pub topic: String,
    pub data: String,
}

/// What is wrong with a reply: Redis answered something the log never holds.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from Redis: {0}")]
pub struct BadReply(pub String);

/// The entries of the one stream in an `XREAD` reply (none when it timed out).
pub fn read(reply: Value) -> Result<Vec<Entry>, BadReply> {
    match reply {
        Value::Nil => Ok(Vec::new()),
        // [[stream name, [entries…]]]
        Value::Array(streams) => match streams.into_iter().next() {
            Some(Value::Array(stream)) => match stream.into_iter().nth(1) {
                Some(entries) => range(entries),
                None => Ok(Vec::new()),
            },
            Some(other) => Err(BadReply(format!("{other:?}"))),
            None => Ok(Vec::new()),
        },
        // RESP3: {stream name: [entries…]}
        Value::Map(streams) => match streams.into_iter().next() {
            Some((_, entries)) => range(entries),
            None => Ok(Vec::new()),
        },
        other => Err(BadReply(format!("{other:?}"))),
    }
}

/// The entries of an `XRANGE`/`XREVRANGE` reply, in the reply's order. Entries
/// without a topic, data or epoch are skipped with a warning: something other than
/// push-bridge wrote them.
pub fn range(reply: Value) -> Result<Vec<Entry>, BadReply> {
    let Value::Array(list) = reply else {
        return Err(BadReply(format!("{reply:?}")));
    };
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let Value::Array(mut parts) = item else {
            return Err(BadReply(format!("{item:?}")));
        };
        if parts.len() != 2 {
            return Err(BadReply(format!("{parts:?}")));
        }
        let fields = parts.pop().unwrap_or(Value::Nil);
        let id = text(parts.pop().unwrap_or(Value::Nil))?;
        let position = Position::parse(&id).ok_or_else(|| BadReply(format!("entry id {id:?}")))?;
        match entry(position, id, fields)? {
            Some(entry) => out.push(entry),
            None => tracing::warn!(%position, "skipped a log entry push-bridge did not write"),
        }
    }
    Ok(out)
}

fn entry(position: Position, entry_id: String, fields: Value) -> Result<Option<Entry>, BadReply> {
    let pairs: Vec<(Value, Value)> = match fields {
        Value::Array(flat) => {
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut values = flat.into_iter();
            while let (Some(k), Some(v)) = (values.next(), values.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        Value::Map(pairs) => pairs,
        // A deleted entry in an old Redis: nothing to read.
        Value::Nil => return Ok(None),
        other => return Err(BadReply(format!("{other:?}"))),
    };
    let (mut epoch, mut publisher_id, mut topic, mut data) = (None, None, None, None);
    for (key, value) in pairs {
        let slot = match bytes(&key) {
            b"e" => &mut epoch,
            b"i" => &mut publisher_id,
            b"t" => &mut topic,
            b"d" => &mut data,
            _ => continue,
        };
        *slot = Some(text(value)?);
    }
    let (Some(epoch), Some(topic), Some(data)) = (epoch, topic, data) else {
        return Ok(None);
    };
    Ok(Some(Entry {
        position,
        id: publisher_id.unwrap_or(entry_id),
        epoch,
        topic,
        data,
    }))
}

fn bytes(value: &Value) -> &[u8] {
    match value {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.as_bytes(),
        _ => &[],
    }
}

/// A bulk or simple string as text.
pub fn text(value: Value) -> Result<String, BadReply> {
    match value {
        Value::BulkString(b) => String::from_utf8(b).map_err(|e| BadReply(e.to_string())),
        Value::SimpleString(s) => Ok(s),
        other => Err(BadReply(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn raw(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn positions_order_like_the_log() {
        let a = Position::parse("1700000000000-9").unwrap();
        let b = Position::parse("1700000000001-0").unwrap();
        assert!(a < b && Position::START < a);
        assert_eq!(a.to_string(), "1700000000000-9");
        assert!(Position::parse("17").is_none() && Position::parse("a-1").is_none());
        assert_eq!(
            Position { ms: 5, seq: 0 }.just_before(),
            Position {
                ms: 4,
                seq: u64::MAX
            }
        );
        assert_eq!(a.just_before(), Position::parse("1700000000000-8").unwrap());
        assert!(a.just_before() < a && Position::START.just_before() == Position::START);
    }

    #[test]
    fn range_and_read_replies() {
        let one = raw("5-1", &["e", "E", "t", "a", "d", "1"]);
        let two = raw("5-2", &["e", "E", "i", "pub-7", "t", "b", "d", "{}"]);
        let foreign = raw("5-3", &["x", "y"]);
        let range_reply = Value::Array(vec![one.clone(), two.clone(), foreign.clone()]);
        let read_reply = Value::Array(vec![Value::Array(vec![
            bulk("p:log"),
            Value::Array(vec![one, two, foreign]),
        ])]);
        for got in [range(range_reply).unwrap(), read(read_reply).unwrap()] {
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].id, "5-1", "no publisher id: the entry id");
            assert_eq!(got[1].id, "pub-7");
            assert_eq!((&*got[1].topic, &*got[1].data), ("b", "{}"));
            assert_eq!(got[1].position, Position { ms: 5, seq: 2 });
        }
        assert!(read(Value::Nil).unwrap().is_empty());
        assert!(range(Value::Array(vec![])).unwrap().is_empty());
        assert!(read(Value::Int(3)).is_err() && range(Value::Int(3)).is_err());
    }
}
