//! WebSocket frames the bridge writes itself (RFC 6455 section 5): server frames are
//! not masked, so a frame built once is the same bytes for every recipient.

use bytes::{BufMut, Bytes, BytesMut};

/// A complete unmasked text frame (server → client), header and payload.
pub fn text_frame(payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut frame = BytesMut::with_capacity(len + 10);
    frame.put_u8(0x81); // FIN, text
    if len < 126 {
        frame.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        frame.put_u8(126);
        frame.put_u16(len);
    } else {
        frame.put_u8(127);
        frame.put_u64(len as u64);
    }
    frame.put_slice(payload);
    frame.freeze()
}

const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

/// A control frame (FIN set, payload at most 125 bytes).
fn control_frame(opcode: u8, payload: &[u8]) -> Bytes {
    let payload = &payload[..payload.len().min(125)];
    let mut frame = BytesMut::with_capacity(2 + payload.len());
    frame.put_u8(0x80 | opcode);
    frame.put_u8(payload.len() as u8);
    frame.put_slice(payload);
    frame.freeze()
}

/// A close frame with `code` and as much of `reason` as fits (whole characters).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    control_frame(OP_CLOSE, &payload)
}

/// A ping frame (empty payload).
pub fn ping_frame() -> Bytes {
    const PING: [u8; 2] = [0x80 | OP_PING, 0];
    Bytes::from_static(&PING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_are_final_and_short() {
        assert_eq!(&ping_frame()[..], &[0x89, 0x00]);
        let close = close_frame(4008, "slow consumer");
        assert_eq!(&close[..4], &[0x88, 15, 0x0f, 0xa8]);
        assert_eq!(&close[4..], b"slow consumer");
        // The reason is cut to fit 125 bytes, on a character boundary.
        let long = close_frame(1000, &"é".repeat(100));
        assert_eq!(long[1], 2 + 122);
        assert!(std::str::from_utf8(&long[4..]).is_ok());
    }

    #[test]
    fn text_frames_use_the_shortest_length_encoding() {
        assert_eq!(&text_frame(b"hi")[..], b"\x81\x02hi");
        let medium = text_frame(&[b'x'; 300]);
        assert_eq!(&medium[..4], &[0x81, 126, 1, 44]);
        assert_eq!(medium.len(), 304);
        let large = text_frame(&vec![b'x'; 70_000]);
        assert_eq!(&large[..2], &[0x81, 127]);
        assert_eq!(&large[2..10], &70_000u64.to_be_bytes());
    }
}
