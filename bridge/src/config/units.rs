//! How durations and sizes are written in the configuration: durations the way humans
//! write them (`25s`, `500ms`, `1h 30m`), sizes as bytes or with a binary unit
//! (`4096`, `4KiB`, `1MiB`). Both also accept a bare number where it makes sense, so a
//! value that arrives as a number (from TOML or an environment variable) is judged by
//! what it means, not by how it was typed.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// A scalar as text, whatever its type: `"25s"`, `25`, `2.5` and `true` all come out
/// as the characters the user wrote.
pub(super) fn scalar_text<'de, D: Deserializer<'de>>(
    d: D,
    expecting: &'static str,
) -> Result<String, D::Error> {
    struct Text(&'static str);
    impl Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(Text(expecting))
}

/// Durations: `#[serde(with = "units::human_duration")]`.
pub mod human_duration {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = super::scalar_text(d, "a duration such as \"25s\"")?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration ({e}); write e.g. \"25s\", \"500ms\" or \"5m\""
            ))
        })
    }
}

/// Optional durations (absent: `None`): `#[serde(default, with = "units::human_duration_option")]`.
pub mod human_duration_option {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::human_duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::human_duration::deserialize(d).map(Some)
    }
}

/// Sizes in bytes: `#[serde(with = "units::human_size")]`.
pub mod human_size {
    use serde::{Deserializer, Serializer};

    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];

    /// Exact, so that a printed configuration reads back to the same value: the
    /// largest binary unit that divides the size, else plain bytes.
    pub fn serialize<S: Serializer>(n: &usize, s: S) -> Result<S::Ok, S::Error> {
        let n = *n as u64;
        match UNITS
            .iter()
            .find(|(unit, _)| n != 0 && n.is_multiple_of(*unit))
        {
            Some((unit, name)) => s.serialize_str(&format!("{}{name}", n / unit)),
            None => s.serialize_u64(n),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let text = super::scalar_text(d, "a size such as 4096 or \"4KiB\"")?;
        let bytes = text
            .trim()
            .parse::<bytesize::ByteSize>()
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a size ({e}); write e.g. 4096, \"4KiB\" or \"1MiB\""
                ))
            })?
            .as_u64();
        usize::try_from(bytes)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is too large a size")))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use std::time::Duration;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        #[serde(with = "super::human_duration")]
        d: Duration,
        #[serde(with = "super::human_size")]
        s: usize,
    }

    fn parse(text: &str) -> Result<Probe, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn durations_and_sizes_in_every_accepted_spelling() {
        let cases = [
            ("d = \"25s\"\ns = 4096", Duration::from_secs(25), 4096),
            (
                "d = \"500ms\"\ns = \"4KiB\"",
                Duration::from_millis(500),
                4096,
            ),
            (
                "d = \"1h 30m\"\ns = \"1MiB\"",
                Duration::from_secs(5400),
                1 << 20,
            ),
            ("d = \" 5m \"\ns = \"4096\"", Duration::from_secs(300), 4096),
            ("d = \"1s\"\ns = \"4 KiB\"", Duration::from_secs(1), 4096),
        ];
        for (text, d, s) in cases {
            assert_eq!(parse(text), Ok(Probe { d, s }), "{text}");
        }
    }

    #[test]
    fn refusals_say_what_to_write() {
        let e = parse("d = \"5 parsecs\"\ns = 1").unwrap_err();
        assert!(e.contains("\"5 parsecs\" is not a duration"), "{e}");
        assert!(e.contains("\"25s\""), "{e}");
        // A bare number has no unit: refused rather than guessed.
        let e = parse("d = 25\ns = 1").unwrap_err();
        assert!(e.contains("\"25\" is not a duration"), "{e}");
        let e = parse("d = \"1s\"\ns = \"lots\"").unwrap_err();
        assert!(e.contains("\"lots\" is not a size"), "{e}");
        let e = parse("d = \"1s\"\ns = -4").unwrap_err();
        assert!(e.contains("\"-4\" is not a size"), "{e}");
        let e = parse("d = true\ns = 1").unwrap_err();
        assert!(e.contains("a duration such as"), "{e}");
    }

    #[test]
    fn serialization_is_exact_and_reads_back() {
        for (s, printed) in [
            (4096, "\"4KiB\""),
            (4097, "4097"),
            (4 << 20, "\"4MiB\""),
            (3 << 30, "\"3GiB\""),
            (0, "0"),
            (1536, "1536"),
        ] {
            let probe = Probe {
                d: Duration::from_millis(1500),
                s,
            };
            let text = toml::to_string(&probe).unwrap();
            assert!(text.contains(&format!("s = {printed}")), "{text}");
            assert!(text.contains("d = \"1s 500ms\""), "{text}");
            assert_eq!(parse(&text), Ok(probe));
        }
    }
}
