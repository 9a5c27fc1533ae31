//! memcached's own numbers, defined once. Owns: the constants that several layers must agree
//! on because memcached defines them (key length, binary magic bytes). Knows nothing else:
//! `protocol` and `storage` know nothing of each other, but both know memcached.

/// `KEY_MAX_LENGTH`: the longest key memcached accepts, in every protocol.
pub const KEY_MAX: usize = 250;

/// The first byte of every binary-protocol request (`PROTOCOL_BINARY_REQ`); a connection whose
/// first byte is this speaks the binary protocol.
pub const BINARY_REQ_MAGIC: u8 = 0x80;

/// The first byte of every binary-protocol response (`PROTOCOL_BINARY_RES`).
pub const BINARY_RES_MAGIC: u8 = 0x81;

/// The bytes memcached 1.6.18 accounts for an item (`item_make_header`: its 48-byte header, 8
/// more for CAS unless `-C`, the key and its NUL, the value and its CRLF, 4 bytes of non-zero
/// client flags). An item is too large for `-I` when this exceeds it, whatever our own item
/// layout, so the limit falls exactly where memcached's does.
pub fn item_total(key_len: usize, value_len: usize, flags: u32, use_cas: bool) -> usize {
    let fixed: usize = 48 + if use_cas { 8 } else { 0 } + 1 + 2 + if flags != 0 { 4 } else { 0 };
    fixed.saturating_add(key_len).saturating_add(value_len)
}

/// `MAX_NUMBER_OF_SLAB_CLASSES - 1`: the most slab classes memcached makes (ids 1..=63). When
/// a user sets `-f`, `-n` or `-o slab_sizes`, classes stop where memcached's would.
pub const SLAB_CLASSES_MAX: usize = 63;

/// `-f`'s default growth factor between slab classes.
pub const GROWTH_FACTOR: f64 = 1.25;
