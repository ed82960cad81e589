//! Every message on the bus carries an HMAC-SHA256 of its body under a key the gateways share,
//! derived from their service secret, so that only a gateway can speak on the bus: whatever
//! else reaches Redis can neither forge a request nor slip an event to a client.

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type Key = Hmac<Sha256>;

/// The length of a message's tag, in front of its body.
const TAG: usize = 32;

/// Seals messages for the bus, and opens what it carries.
#[derive(Clone)]
pub(crate) struct Seal(Key);

impl Seal {
    /// The seal of the gateways whose service secret is `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut derive = Key::new_from_slice(secret).expect("HMAC takes a key of any length");
        derive.update(b"proliferate bus v1");
        let key = derive.finalize().into_bytes();
        Self(Key::new_from_slice(&key).expect("HMAC takes a key of any length"))
    }

    /// `body`, tagged.
    pub fn seal(&self, body: &[u8]) -> Bytes {
        let mut mac = self.0.clone();
        mac.update(body);
        let mut sealed = BytesMut::with_capacity(TAG + body.len());
        sealed.put_slice(&mac.finalize().into_bytes());
        sealed.put_slice(body);
        sealed.freeze()
    }

    /// The body of a message this seal made; `None` for anything else.
    pub fn open(&self, mut message: Bytes) -> Option<Bytes> {
        if message.len() < TAG {
            return None;
        }
        let body = message.split_off(TAG);
        let mut mac = self.0.clone();
        mac.update(&body);
        mac.verify_slice(&message).ok()?;
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_sealed_with_the_same_secret_open() {
        let (ours, theirs) = (Seal::new(b"shared secret"), Seal::new(b"another secret"));
        let sealed = ours.seal(b"hello");
        assert_eq!(ours.open(sealed.clone()).as_deref(), Some(&b"hello"[..]));
        assert_eq!(theirs.open(sealed.clone()), None, "another key");
        let mut forged = sealed.to_vec();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(ours.open(Bytes::from(forged)), None, "a changed body");
        assert_eq!(ours.open(Bytes::from_static(b"short")), None);
        assert_eq!(ours.open(Bytes::from_static(b"hello")), None, "unsealed");
    }
}
