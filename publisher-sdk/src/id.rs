//! Event ids the SDK makes up when the caller gives none: UUIDv7 text, which sorts by
//! creation time and is unique, so the bridge can deduplicate retries by id and
//! readers can order events by it.

/// A fresh event id: a UUIDv7 in lowercase hyphenated form (36 printable ASCII bytes,
/// so always a valid id). Ids made by one process sort, as strings, in the order they
/// were made, even within one millisecond.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::is_valid_id;

    #[test]
    fn ids_are_valid_uuidv7_text() {
        let id = new_event_id();
        assert_eq!(id.len(), 36);
        assert!(is_valid_id(&id));
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(id, id.to_lowercase());
    }

    #[test]
    fn ids_strictly_increase_even_within_a_millisecond() {
        let ids: Vec<String> = (0..10_000).map(|_| new_event_id()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn ids_from_several_threads_are_unique() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..2_000).map(|_| new_event_id()).collect::<Vec<_>>()))
            .collect();
        let mut all = std::collections::HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(all.insert(id), "duplicate id");
            }
        }
        assert_eq!(all.len(), 8_000);
    }
}
