//! A small D-Bus client: enough of the wire protocol to call methods on systemd's manager.
//!
//! Transport is a unix stream socket (systemd's private socket, the system bus or a user's
//! session bus), auth is SASL EXTERNAL with the caller's uid as the bus daemon sees it (the
//! host uid: a runtime in a rootless caller's user namespace is uid 0 there, but the kernel
//! gives the daemon the uid it maps to), messages are little-endian. Values carry their own
//! type ([`Value`]); the body of a message is marshalled with the alignment rules of the
//! specification (each value aligned to its type's natural boundary, measured from the start
//! of the message; the header is padded to 8 so the body starts aligned).
//!
//! Only the systemd cgroup driver uses this module; the cgroupfs driver never touches it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Errors of the D-Bus client.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("cannot connect to D-Bus socket {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("D-Bus I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("D-Bus authentication refused: server said {0:?}")]
    Auth(String),
    #[error("malformed D-Bus message: {0}")]
    Malformed(String),
    #[error("{name}: {message}")]
    Remote { name: String, message: String },
}

/// A D-Bus value with its type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Path(String),
    Sig(String),
    /// Element signature and elements (all of that type).
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    /// `v` wrapped in a variant.
    pub fn var(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    /// The D-Bus signature of this value.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::F64(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
        }
    }

    /// The string inside a `s`, `o` or `g` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }
}

/// Natural alignment of the type whose signature starts with `c`.
fn alignment(c: u8) -> usize {
    match c {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x t d ( {
    }
}

/// Length of the first complete type in `sig`.
fn single_type_len(sig: &[u8]) -> Result<usize, DbusError> {
    let bad = || DbusError::Malformed(format!("bad signature {:?}", String::from_utf8_lossy(sig)));
    match sig.first() {
        None => Err(bad()),
        Some(b'a') => Ok(1 + single_type_len(&sig[1..])?),
        Some(&open @ (b'(' | b'{')) => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut i = 1;
            while sig.get(i).ok_or_else(bad)? != &close {
                i += single_type_len(&sig[i..])?;
            }
            Ok(i + 1)
        }
        Some(b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o' | b'g')
        | Some(b'v' | b'h') => Ok(1),
        Some(_) => Err(bad()),
    }
}

/// Split a signature into its complete types.
pub fn split_signature(sig: &str) -> Result<Vec<&str>, DbusError> {
    let mut out = Vec::new();
    let mut rest = sig;
    while !rest.is_empty() {
        let n = single_type_len(rest.as_bytes())?;
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    Ok(out)
}

/// Marshals values into a buffer whose offset 0 is an 8-aligned position of the message.
#[derive(Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

/// A length on the wire. A D-Bus message is at most 128 MiB (the spec's limit, which the
/// bus enforces), and ours carry unit names and properties: saturating never happens, and
/// if it did the bus would refuse the message rather than misread it.
fn wire_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Encoder {
    fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(wire_len(s.len()));
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn sig(&mut self, s: &str) {
        // Signatures are at most 255 bytes (the D-Bus spec); ours are short constants.
        self.buf.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::U16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::I32(x) => {
                self.pad(4);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::U32(x) => self.u32(*x),
            Value::I64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::U64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::F64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => self.sig(s),
            Value::Array(elem, items) => {
                self.pad(4);
                let len_at = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                // The padding before the first element is not part of the length.
                self.pad(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for item in items {
                    self.value(item);
                }
                let len = wire_len(self.buf.len() - start);
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Variant(inner) => {
                self.sig(&inner.signature());
                self.value(inner);
            }
        }
    }
}

/// Unmarshals values from a buffer whose offset 0 is an 8-aligned position of the message.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    fn short() -> DbusError {
        DbusError::Malformed("message ends early".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DbusError> {
        let end = self.pos.checked_add(n).ok_or_else(Self::short)?;
        let s = self.buf.get(self.pos..end).ok_or_else(Self::short)?;
        self.pos = end;
        Ok(s)
    }

    fn align(&mut self, a: usize) -> Result<(), DbusError> {
        let pad = (a - self.pos % a) % a;
        self.take(pad).map(|_| ())
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DbusError> {
        self.align(N)?;
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, DbusError> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    fn utf8(bytes: &[u8]) -> Result<String, DbusError> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| DbusError::Malformed("string is not UTF-8".into()))
    }

    fn string(&mut self) -> Result<String, DbusError> {
        let len = self.u32()? as usize;
        let s = Self::utf8(self.take(len)?)?;
        self.take(1)?;
        Ok(s)
    }

    fn sig(&mut self) -> Result<String, DbusError> {
        let len = usize::from(self.take(1)?[0]);
        let s = Self::utf8(self.take(len)?)?;
        self.take(1)?;
        Ok(s)
    }

    /// One value of the complete type `sig`.
    pub fn value(&mut self, sig: &str) -> Result<Value, DbusError> {
        let b = sig.as_bytes();
        Ok(match b.first().copied().unwrap_or(0) {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                n => return Err(DbusError::Malformed(format!("boolean value {n}"))),
            },
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b'd' => Value::F64(f64::from_le_bytes(self.fixed()?)),
            b's' => Value::Str(self.string()?),
            b'o' => Value::Path(self.string()?),
            b'g' => Value::Sig(self.sig()?),
            b'v' => {
                let inner = self.sig()?;
                if split_signature(&inner)?.len() != 1 {
                    return Err(DbusError::Malformed(format!("variant signature {inner:?}")));
                }
                Value::Variant(Box::new(self.value(&inner)?))
            }
            b'a' => {
                let elem = &sig[1..];
                let len = self.u32()? as usize;
                self.align(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')))?;
                let end = self.pos.checked_add(len).ok_or_else(Self::short)?;
                if end > self.buf.len() {
                    return Err(Self::short());
                }
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem)?);
                }
                if self.pos != end {
                    return Err(DbusError::Malformed("array length mismatch".into()));
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let mut fields = Vec::new();
                for t in split_signature(&sig[1..sig.len() - 1])? {
                    fields.push(self.value(t)?);
                }
                Value::Struct(fields)
            }
            _ => return Err(DbusError::Malformed(format!("unsupported type {sig:?}"))),
        })
    }
}

/// Message types.
pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// A method call to make.
pub struct Call<'a> {
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub args: Vec<Value>,
}

/// Marshal a method call with serial `serial`.
pub fn encode_call(call: &Call<'_>, serial: u32) -> Vec<u8> {
    let mut body = Encoder::default();
    for a in &call.args {
        body.value(a);
    }
    let sig: String = call.args.iter().map(Value::signature).collect();
    let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::var(v)]);
    let mut fields = vec![
        field(1, Value::Path(call.path.into())),
        field(2, Value::str(call.interface)),
        field(3, Value::str(call.member)),
    ];
    if let Some(d) = call.destination {
        fields.push(field(6, Value::str(d)));
    }
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut msg = Encoder::default();
    msg.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    msg.buf
        .extend_from_slice(&wire_len(body.buf.len()).to_le_bytes());
    msg.buf.extend_from_slice(&serial.to_le_bytes());
    msg.value(&Value::Array("(yv)".into(), fields));
    msg.pad(8);
    msg.buf.extend_from_slice(&body.buf);
    msg.buf
}

/// A received message.
#[derive(Debug)]
pub struct Message {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub error_name: Option<String>,
    pub member: Option<String>,
    pub body: Vec<Value>,
}

/// Bytes of a whole message once its first 16 bytes are known.
pub fn message_len(head: &[u8; 16]) -> Result<usize, DbusError> {
    if head[0] != b'l' {
        return Err(DbusError::Malformed(
            "big-endian message (only little-endian is supported)".into(),
        ));
    }
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let body = word(4) as usize;
    let fields = word(12) as usize;
    let header = 16 + fields;
    let total = header.div_ceil(8) * 8 + body;
    if total > 128 << 20 {
        return Err(DbusError::Malformed(format!("message of {total} bytes")));
    }
    Ok(total)
}

/// Parse one complete message.
pub fn decode_message(buf: &[u8]) -> Result<Message, DbusError> {
    let mut d = Decoder::new(buf);
    let head = d.take(4)?;
    if head[0] != b'l' {
        return Err(DbusError::Malformed("not little-endian".into()));
    }
    let kind = head[1];
    let body_len = d.u32()? as usize;
    d.u32()?; // the sender's serial: replies are matched on reply_serial
    let Value::Array(_, fields) = d.value("a(yv)")? else {
        unreachable!("an array signature decodes to an array")
    };
    d.align(8)?;
    let mut m = Message {
        kind,
        reply_serial: None,
        error_name: None,
        member: None,
        body: Vec::new(),
    };
    let mut sig = String::new();
    for f in fields {
        let Value::Struct(kv) = f else { continue };
        let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (kv.first(), kv.get(1)) else {
            continue;
        };
        match (code, v.as_ref()) {
            (3, Value::Str(s)) => m.member = Some(s.clone()),
            (4, Value::Str(s)) => m.error_name = Some(s.clone()),
            (5, Value::U32(r)) => m.reply_serial = Some(*r),
            (8, Value::Sig(s)) => sig = s.clone(),
            _ => {}
        }
    }
    let body = d.take(body_len)?;
    let mut bd = Decoder::new(body);
    for t in split_signature(&sig)? {
        m.body.push(bd.value(t)?);
    }
    Ok(m)
}

/// `uid` of the caller's user namespace as the initial namespace sees it (what a bus daemon
/// gets from SO_PEERCRED): mapped through /proc/self/uid_map.
pub fn host_uid(uid: u32) -> Result<u32, DbusError> {
    let map = std::fs::read_to_string("/proc/self/uid_map")?;
    map_id(&map, uid).ok_or_else(|| {
        DbusError::Auth(format!(
            "uid {uid} has no mapping in /proc/self/uid_map, so no host uid to authenticate as"
        ))
    })
}

/// `id` through an id map in /proc's text form (`inside outside count` lines).
pub fn map_id(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut f = line.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) = (f.next(), f.next(), f.next())
        else {
            return None;
        };
        let id = u64::from(id);
        (id >= inside && id - inside < count)
            .then(|| u32::try_from(outside + (id - inside)).ok())
            .flatten()
    })
}

/// A connection to a bus or to a peer (systemd's private socket).
pub struct Connection {
    sock: UnixStream,
    serial: u32,
    /// Messages read while waiting for a reply (signals), oldest first.
    pub pending: Vec<Message>,
}

impl Connection {
    /// Connect to `path` and authenticate as the calling uid. `bus` is false for a direct
    /// peer (no bus daemon: no Hello, no destinations needed).
    pub fn open(path: &Path, bus: bool, timeout: Duration) -> Result<Self, DbusError> {
        let sock = UnixStream::connect(path).map_err(|source| DbusError::Connect {
            path: path.display().to_string(),
            source,
        })?;
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
        let mut c = Connection {
            sock,
            serial: 0,
            pending: Vec::new(),
        };
        c.auth()?;
        if bus {
            c.call(&Call {
                destination: Some("org.freedesktop.DBus"),
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "Hello",
                args: vec![],
            })?;
        }
        Ok(c)
    }

    fn auth(&mut self) -> Result<(), DbusError> {
        // SAFETY: geteuid cannot fail and touches no memory.
        let euid = unsafe { libc::geteuid() };
        let uid = host_uid(euid)?;
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.sock
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = self.read_line()?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth(line));
        }
        self.sock.write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    fn read_line(&mut self) -> Result<String, DbusError> {
        // The server sends nothing after its reply until BEGIN, so reading in chunks
        // cannot swallow the first message.
        let mut line = Vec::new();
        let mut b = [0u8; 256];
        while !line.ends_with(b"\r\n") {
            let n = self.sock.read(&mut b)?;
            if n == 0 {
                return Err(DbusError::Auth("connection closed".into()));
            }
            line.extend_from_slice(&b[..n]);
            if line.len() > 4096 {
                return Err(DbusError::Auth("overlong line".into()));
            }
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Read one message.
    pub fn read_message(&mut self) -> Result<Message, DbusError> {
        let mut head = [0u8; 16];
        self.sock.read_exact(&mut head)?;
        let total = message_len(&head)?;
        let mut buf = vec![0u8; total];
        buf[..16].copy_from_slice(&head);
        self.sock.read_exact(&mut buf[16..])?;
        decode_message(&buf)
    }

    /// Call a method and return the reply's body; a D-Bus error reply becomes
    /// [`DbusError::Remote`]. Signals that arrive meanwhile are kept in `pending`.
    pub fn call(&mut self, call: &Call<'_>) -> Result<Vec<Value>, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        self.sock.write_all(&encode_call(call, serial))?;
        loop {
            let m = self.read_message()?;
            if m.reply_serial != Some(serial) {
                if m.kind == SIGNAL {
                    self.pending.push(m);
                }
                continue;
            }
            return match m.kind {
                METHOD_RETURN => Ok(m.body),
                ERROR => Err(DbusError::Remote {
                    name: m.error_name.unwrap_or_default(),
                    message: m
                        .body
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                }),
                k => Err(DbusError::Malformed(format!("reply of message type {k}"))),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value) {
        let mut e = Encoder::default();
        e.value(&v);
        let sig = v.signature();
        let mut d = Decoder::new(&e.buf);
        assert_eq!(d.value(&sig).unwrap(), v, "{sig}");
        assert_eq!(d.pos, e.buf.len());
    }

    #[test]
    fn basic_types_bytes() {
        let enc = |v: Value| {
            let mut e = Encoder::default();
            e.buf.push(0xff); // misalign, to see the padding
            e.value(&v);
            e.buf
        };
        assert_eq!(enc(Value::Bool(true)), [0xff, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(enc(Value::U32(0x01020304)), [0xff, 0, 0, 0, 4, 3, 2, 1]);
        assert_eq!(
            enc(Value::U64(1)),
            [0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            enc(Value::str("ab")),
            [0xff, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', 0]
        );
        assert_eq!(enc(Value::Sig("s".into())), [0xff, 1, b's', 0]);
        assert_eq!(
            enc(Value::var(Value::U32(7))),
            [0xff, 1, b'u', 0, 7, 0, 0, 0]
        );
    }

    #[test]
    fn array_padding_not_counted() {
        // a(sv) with one element: length word, pad to 8, then the struct.
        let v = Value::Array(
            "(sv)".into(),
            vec![Value::Struct(vec![
                Value::str("A"),
                Value::var(Value::Bool(true)),
            ])],
        );
        let mut e = Encoder::default();
        e.value(&v);
        assert_eq!(
            e.buf,
            [
                16, 0, 0, 0, // array length: excludes the 4 bytes of padding below
                0, 0, 0, 0, // pad to 8 for the struct
                1, 0, 0, 0, b'A', 0, // "A"
                1, b'b', 0, // variant signature "b"
                0, 0, 0, // pad to 4
                1, 0, 0, 0 // true
            ][..]
        );
        // An empty array of 8-aligned elements still pads.
        let mut e = Encoder::default();
        e.value(&Value::U32(9));
        e.value(&Value::Array("t".into(), vec![]));
        assert_eq!(e.buf, [9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(e.buf.len(), 8);
    }

    #[test]
    fn round_trips() {
        roundtrip(Value::Array(
            "y".into(),
            vec![Value::Byte(1), Value::Byte(3)],
        ));
        roundtrip(Value::Struct(vec![
            Value::Byte(1),
            Value::U64(u64::MAX),
            Value::I16(-2),
            Value::F64(1.5),
            Value::Path("/a/b".into()),
        ]));
        roundtrip(Value::Array(
            "(sa(sv))".into(),
            vec![Value::Struct(vec![
                Value::str("Unit"),
                Value::Array(
                    "(sv)".into(),
                    vec![
                        Value::Struct(vec![
                            Value::str("PIDs"),
                            Value::var(Value::Array("u".into(), vec![Value::U32(42)])),
                        ]),
                        Value::Struct(vec![
                            Value::str("DeviceAllow"),
                            Value::var(Value::Array(
                                "(ss)".into(),
                                vec![Value::Struct(vec![
                                    Value::str("/dev/null"),
                                    Value::str("rwm"),
                                ])],
                            )),
                        ]),
                    ],
                ),
            ])],
        ));
        roundtrip(Value::Array("{sv}".into(), vec![]));
    }

    #[test]
    fn signatures() {
        assert_eq!(
            split_signature("sa(sv)a(sa(sv))ub").unwrap(),
            ["s", "a(sv)", "a(sa(sv))", "u", "b"]
        );
        assert!(split_signature("a(s").is_err());
        assert!(split_signature("z").is_err());
        let v = Value::Struct(vec![Value::str("x"), Value::var(Value::I32(1))]);
        assert_eq!(v.signature(), "(sv)");
    }

    #[test]
    fn call_message_layout_and_parse() {
        let call = Call {
            destination: Some("org.freedesktop.DBus"),
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "Hello",
            args: vec![],
        };
        let m = encode_call(&call, 1);
        assert_eq!(&m[..12], &[b'l', 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]);
        let head: [u8; 16] = m[..16].try_into().unwrap();
        assert_eq!(message_len(&head).unwrap(), m.len());
        assert_eq!(m.len() % 8, 0);
        // Field 1 (path): struct at 16, code 1, variant "o", string.
        assert_eq!(&m[16..24], &[1, 1, b'o', 0, 21, 0, 0, 0]);
        let parsed = decode_message(&m).unwrap();
        assert_eq!(parsed.kind, METHOD_CALL);
        assert_eq!(parsed.member.as_deref(), Some("Hello"));
        assert!(parsed.body.is_empty());

        let call = Call {
            destination: None,
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "StopUnit",
            args: vec![Value::str("x.scope"), Value::str("replace")],
        };
        let m = encode_call(&call, 7);
        let parsed = decode_message(&m).unwrap();
        assert_eq!(&m[8..12], &7u32.to_le_bytes());
        assert_eq!(parsed.body, [Value::str("x.scope"), Value::str("replace")]);
    }

    #[test]
    fn ids_map_to_the_host() {
        let initial = "         0          0 4294967295\n";
        assert_eq!(map_id(initial, 0), Some(0));
        assert_eq!(map_id(initial, 1000), Some(1000));
        // A rootless caller's namespace: itself as root, then its subordinate range.
        let rootless = "         0        999          1\n         1     100000      65536\n";
        assert_eq!(map_id(rootless, 0), Some(999));
        assert_eq!(map_id(rootless, 1), Some(100000));
        assert_eq!(map_id(rootless, 65536), Some(165535));
        assert_eq!(map_id(rootless, 65537), None);
        assert_eq!(map_id("", 0), None);
        assert_eq!(map_id("garbage\n", 0), None);
        // This process: outside any user namespace the tests run in the initial one.
        let own = std::fs::read_to_string("/proc/self/uid_map").unwrap();
        // SAFETY: geteuid cannot fail and touches no memory.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(host_uid(euid).unwrap(), map_id(&own, euid).unwrap());
    }

    /// The client against a real bus: a private dbus-daemon (hack/deps installs it).
    #[test]
    fn talks_to_a_real_dbus_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bus");
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\
                 <busconfig><type>session</type><listen>unix:path={}</listen>\
                 <auth>EXTERNAL</auth><policy context=\"default\"><allow send_destination=\"*\"/>\
                 <allow own=\"*\"/><allow receive_sender=\"*\"/></policy></busconfig>",
                sock.display()
            ),
        )
        .unwrap();
        let mut daemon = std::process::Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .spawn()
            .expect("dbus-daemon (package dbus, see hack/deps) must be installed for this test");
        let start = std::time::Instant::now();
        while !sock.exists() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let result = (|| -> Result<(), DbusError> {
            let mut c = Connection::open(&sock, true, Duration::from_secs(10))?;
            let bus = |member, args| Call {
                destination: Some("org.freedesktop.DBus"),
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member,
                args,
            };
            let id = c.call(&bus("GetId", vec![]))?;
            assert!(
                matches!(&id[..], [Value::Str(s)] if s.len() == 32),
                "{id:?}"
            );
            let names = c.call(&bus("ListNames", vec![]))?;
            let [Value::Array(sig, names)] = &names[..] else {
                panic!("{names:?}")
            };
            assert_eq!(sig, "s");
            assert!(names.contains(&Value::str("org.freedesktop.DBus")));
            // Our own unique name (from Hello) is listed too.
            assert!(names
                .iter()
                .any(|n| n.as_str().is_some_and(|s| s.starts_with(':'))));
            match c.call(&bus("GetNameOwner", vec![Value::str("no.such.Name")])) {
                Err(DbusError::Remote { name, .. }) => {
                    assert_eq!(name, "org.freedesktop.DBus.Error.NameHasNoOwner")
                }
                other => panic!("{other:?}"),
            }
            Ok(())
        })();
        let _ = daemon.kill();
        let _ = daemon.wait();
        result.unwrap();
    }

    #[test]
    fn reply_with_error_fields() {
        // A hand-built error reply: reply serial 5, error name, signature "s".
        let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::var(v)]);
        let mut body = Encoder::default();
        body.value(&Value::str("no such unit"));
        let mut e = Encoder::default();
        e.buf.extend_from_slice(&[b'l', ERROR, 1, 1]);
        e.buf
            .extend_from_slice(&wire_len(body.buf.len()).to_le_bytes());
        e.buf.extend_from_slice(&9u32.to_le_bytes());
        e.value(&Value::Array(
            "(yv)".into(),
            vec![
                field(4, Value::str("org.freedesktop.systemd1.NoSuchUnit")),
                field(5, Value::U32(5)),
                field(8, Value::Sig("s".into())),
            ],
        ));
        e.pad(8);
        e.buf.extend_from_slice(&body.buf);
        let m = decode_message(&e.buf).unwrap();
        assert_eq!(m.kind, ERROR);
        assert_eq!(m.reply_serial, Some(5));
        assert_eq!(
            m.error_name.as_deref(),
            Some("org.freedesktop.systemd1.NoSuchUnit")
        );
        assert_eq!(m.body, [Value::str("no such unit")]);
        // Truncated input is an error, never a panic.
        for n in 0..e.buf.len() {
            assert!(decode_message(&e.buf[..n]).is_err(), "{n}");
        }
    }
}
