//! Keeping the history across a graceful restart (`history.file`): written on drain,
//! read at the next start, so a client that reconnects to the restarted bridge with
//! `since` still gets what it missed. One JSON object per line:
//! `{"id":…,"topic":…,"at_ms":…,"data":…}`, oldest first.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::{Event, SharedEvent};
use crate::topic::Topic;

#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    topic: &'a str,
    at_ms: u64,
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct OwnedLine {
    id: String,
    topic: String,
    at_ms: u64,
    data: Box<RawValue>,
}

/// Writes the events to `path` atomically (a temporary file renamed over it).
pub fn save(path: &Path, events: &[(SharedEvent, SystemTime)]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut out = BufWriter::new(std::fs::File::create(&temporary)?);
    for (event, at) in events {
        let Ok(data) = serde_json::from_str::<&RawValue>(&event.data) else {
            continue;
        };
        let at_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let line = Line {
            id: &event.id,
            topic: event.topic.as_str(),
            at_ms,
            data,
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Reads saved events; a missing file is an empty history. Lines that do not parse
/// are skipped and counted in the second value.
pub fn load(path: &Path) -> std::io::Result<(Vec<(SharedEvent, SystemTime)>, usize)> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut events = Vec::new();
    let mut skipped = 0;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        let parsed = serde_json::from_str::<OwnedLine>(&line)
            .ok()
            .and_then(|l| Some((Topic::parse(&l.topic).ok()?, l)));
        let Some((topic, line)) = parsed else {
            skipped += 1;
            continue;
        };
        let event = Arc::new(Event {
            topic,
            id: line.id.into(),
            data: line.data.get().into(),
            received: Instant::now(),
        });
        events.push((event, UNIX_EPOCH + Duration::from_millis(line.at_ms)));
    }
    Ok((events, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let event = Arc::new(Event {
            topic: Topic::parse("a:1").unwrap(),
            id: "id-1".into(),
            data: r#"{"k":[1,"ü"]}"#.into(),
            received: Instant::now(),
        });
        save(&path, &[(event, at)]).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("not json\n{\"id\":\"x\",\"topic\":\"bad topic\",\"at_ms\":1,\"data\":1}\n");
        std::fs::write(&path, text).unwrap();
        let (events, skipped) = load(&path).unwrap();
        assert_eq!(skipped, 2);
        assert_eq!(events.len(), 1);
        let (event, loaded_at) = &events[0];
        assert_eq!(
            (&*event.id, event.topic.as_str(), &*event.data),
            ("id-1", "a:1", r#"{"k":[1,"ü"]}"#)
        );
        assert_eq!(*loaded_at, at);
        assert!(load(&dir.path().join("missing")).unwrap().0.is_empty());
    }
}
