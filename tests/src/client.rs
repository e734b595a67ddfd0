//! `RawZk`: a ZooKeeper client that speaks the jute wire protocol itself
//! over a `std::net::TcpStream` (TCP_NODELAY on), so a test controls exactly
//! what goes on the wire: which frames, in how many `write()` calls, split
//! where. Everything it sends and reads is recorded in a `Recorder`, which
//! is the workload's `Expected`.

use crate::counts::{Recorder, multi_key};
use crate::jute::{self, CreateMode, Reader, Writer, op, xid};
use crate::netns::Netns;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Where a server listens, and in which namespace (None: the host's).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub netns: Option<Netns>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Every blocking read is bounded by this.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

impl Endpoint {
    /// A TCP connection to the server (created inside its namespace).
    pub fn connect_tcp(&self) -> io::Result<TcpStream> {
        let addr = self.addr;
        let s = match &self.netns {
            None => TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?,
            Some(ns) => ns.run(move || TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT))??,
        };
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(READ_TIMEOUT))?;
        s.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(s)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Sends a four-letter word on a fresh connection and reads the text
    /// answer until the server closes. Records `FourLetterWord`/
    /// `FourLetterReply` when a recorder is given.
    pub fn four_letter(&self, word: &str, rec: Option<&Recorder>) -> io::Result<String> {
        let mut s = self.connect_tcp()?;
        let client = s.local_addr()?.to_string();
        s.write_all(word.as_bytes())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        if let Some(rec) = rec {
            rec.with(&client, |c| {
                c.add("FourLetterWord", word, 1);
                if !out.is_empty() {
                    c.add("FourLetterReply", "", 1);
                }
            });
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// One request frame, length prefix included, with what the recorder needs.
#[derive(Clone, Debug)]
pub struct Frame {
    pub xid: i32,
    pub opcode: i32,
    pub path: Option<String>,
    pub bytes: Vec<u8>,
    /// Multi sub-ops as (request type, path).
    pub multi_ops: Vec<(String, String)>,
}

impl Frame {
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A sub-operation of a multi.
#[derive(Clone, Debug)]
pub enum MultiOp {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

impl MultiOp {
    pub fn create(path: &str, data: &[u8]) -> MultiOp {
        MultiOp::Create {
            path: path.into(),
            data: data.into(),
            mode: CreateMode::Persistent,
        }
    }
    pub fn set_data(path: &str, data: &[u8]) -> MultiOp {
        MultiOp::SetData {
            path: path.into(),
            data: data.into(),
            version: -1,
        }
    }
    pub fn delete(path: &str) -> MultiOp {
        MultiOp::Delete {
            path: path.into(),
            version: -1,
        }
    }
    fn opcode(&self) -> i32 {
        match self {
            MultiOp::Create { .. } => op::CREATE,
            MultiOp::SetData { .. } => op::SET_DATA,
            MultiOp::Delete { .. } => op::DELETE,
            MultiOp::Check { .. } => op::CHECK,
        }
    }
    fn path(&self) -> &str {
        match self {
            MultiOp::Create { path, .. }
            | MultiOp::SetData { path, .. }
            | MultiOp::Delete { path, .. }
            | MultiOp::Check { path, .. } => path,
        }
    }
}

/// A reply, paired with its request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub opcode: i32,
    pub path: String,
    /// The body after the reply header.
    pub body: Vec<u8>,
    /// Frame length incl. the 4-byte prefix.
    pub size: usize,
}

impl Reply {
    pub fn err_name(&self) -> String {
        jute::err_name(self.err)
    }
    /// Panics unless the reply is `Ok`.
    #[track_caller]
    pub fn ok(self) -> Reply {
        assert_eq!(
            self.err,
            0,
            "{} {} failed: {}",
            jute::request_name(self.opcode),
            self.path,
            self.err_name()
        );
        self
    }
    /// Panics unless the reply carries error `name`.
    #[track_caller]
    pub fn expect_err(self, name: &str) -> Reply {
        assert_eq!(
            self.err_name(),
            name,
            "{} {}",
            jute::request_name(self.opcode),
            self.path
        );
        self
    }
    /// The created path of a Create/Create2 reply.
    pub fn created_path(&self) -> String {
        Reader::new(&self.body).ustring().unwrap_or_default()
    }
    /// The data of a GetData reply.
    pub fn data(&self) -> Vec<u8> {
        Reader::new(&self.body)
            .buffer()
            .ok()
            .flatten()
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }
    /// The children of a GetChildren/GetChildren2 reply.
    pub fn children(&self) -> Vec<String> {
        Reader::new(&self.body).vec_ustring().unwrap_or_default()
    }
}

/// A watch event (xid -1).
#[derive(Clone, Debug)]
pub struct Event {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
    pub size: usize,
}

impl Event {
    pub fn type_name(&self) -> String {
        jute::event_type_name(self.event_type)
    }
}

/// Options of the handshake.
#[derive(Clone, Debug)]
pub struct ConnectOpts {
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub last_zxid: i64,
    pub read_only: bool,
    /// Send the trailing readOnly byte (3.4+ clients do).
    pub send_read_only_byte: bool,
}

impl Default for ConnectOpts {
    fn default() -> Self {
        ConnectOpts {
            timeout_ms: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            last_zxid: 0,
            read_only: false,
            send_read_only_byte: true,
        }
    }
}

struct Pending {
    xid: i32,
    opcode: i32,
    path: String,
}

pub struct RawZk {
    ep: Endpoint,
    stream: TcpStream,
    rec: Recorder,
    client: String,
    next_xid: i32,
    pending: VecDeque<Pending>,
    stash: VecDeque<Reply>,
    events: VecDeque<Event>,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    pub last_zxid: i64,
    /// The ConnectResponse's readOnly byte, if it had one.
    pub read_only: Option<bool>,
}

impl RawZk {
    /// A new session (timeout 30 s).
    pub fn connect(ep: &Endpoint, rec: &Recorder) -> io::Result<RawZk> {
        Self::connect_with(ep, rec, ConnectOpts::default())
    }

    pub fn connect_with(ep: &Endpoint, rec: &Recorder, o: ConnectOpts) -> io::Result<RawZk> {
        let stream = ep.connect_tcp()?;
        let client = stream.local_addr()?.to_string();
        let mut zk = RawZk {
            ep: ep.clone(),
            stream,
            rec: rec.clone(),
            client,
            next_xid: 1,
            pending: VecDeque::new(),
            stash: VecDeque::new(),
            events: VecDeque::new(),
            session_id: 0,
            passwd: Vec::new(),
            timeout_ms: 0,
            last_zxid: o.last_zxid,
            read_only: None,
        };
        let mut w = Writer::new();
        w.int(0)
            .long(o.last_zxid)
            .int(o.timeout_ms)
            .long(o.session_id)
            .buffer(&o.passwd);
        if o.send_read_only_byte {
            w.boolean(o.read_only);
        }
        let frame = w.framed();
        zk.stream.write_all(&frame)?;
        zk.rec.with(&zk.client, |c| {
            c.add("ConnectRequest", "", 1)
                .add_bytes("ConnectRequest", "", frame.len() as u64);
        });
        let body = zk.read_frame()?;
        let size = body.len() + 4;
        zk.rec.with(&zk.client, |c| {
            c.add("ConnectResponse", "", 1)
                .add_bytes("ConnectResponse", "", size as u64);
        });
        let mut r = Reader::new(&body);
        let bad = |e: jute::JuteError| io::Error::new(io::ErrorKind::InvalidData, e);
        let _proto = r.int().map_err(bad)?;
        zk.timeout_ms = r.int().map_err(bad)?;
        zk.session_id = r.long().map_err(bad)?;
        zk.passwd = r.buffer().map_err(bad)?.unwrap_or_default().to_vec();
        if r.remaining() >= 1 {
            zk.read_only = Some(r.boolean().map_err(bad)?);
        }
        if zk.timeout_ms <= 0 {
            return Err(io::Error::other(format!(
                "session 0x{:x} expired or refused",
                o.session_id
            )));
        }
        Ok(zk)
    }

    /// Client address "ip:port", as zk-dump's `client` field.
    pub fn client_addr(&self) -> &str {
        &self.client
    }

    pub fn session_hex(&self) -> String {
        format!("0x{:x}", self.session_id)
    }

    pub fn recorder(&self) -> &Recorder {
        &self.rec
    }

    /// Records from now on into `rec` (e.g. once a capture has started on
    /// a connection that was opened before it).
    pub fn set_recorder(&mut self, rec: &Recorder) {
        self.rec = rec.clone();
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    fn alloc_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid += 1;
        x
    }

    fn frame(&mut self, xid: i32, opcode: i32, path: Option<&str>, body: &Writer) -> Frame {
        let mut w = Writer::new();
        w.int(xid).int(opcode).raw(&body.buf);
        Frame {
            xid,
            opcode,
            path: path.map(str::to_string),
            bytes: w.framed(),
            multi_ops: Vec::new(),
        }
    }

    // ---- frame builders (each allocates an xid) ----

    pub fn create_frame(&mut self, path: &str, data: &[u8], mode: CreateMode) -> Frame {
        self.create_like_frame(op::CREATE, path, data, mode)
    }

    pub fn create2_frame(&mut self, path: &str, data: &[u8], mode: CreateMode) -> Frame {
        self.create_like_frame(op::CREATE2, path, data, mode)
    }

    /// `createContainer` (opcode 19), the opcode the Java client uses for
    /// CreateMode.CONTAINER.
    pub fn create_container_frame(&mut self, path: &str, data: &[u8]) -> Frame {
        self.create_like_frame(op::CREATE_CONTAINER, path, data, CreateMode::Container)
    }

    fn create_like_frame(
        &mut self,
        opcode: i32,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Frame {
        let mut w = Writer::new();
        w.ustring(path).buffer(data).open_acl().int(mode as i32);
        let x = self.alloc_xid();
        self.frame(x, opcode, Some(path), &w)
    }

    /// A create with an explicit ACL (e.g. `("auth", "")` after setAuth).
    pub fn create_acl_frame(
        &mut self,
        path: &str,
        data: &[u8],
        perms: i32,
        scheme: &str,
        id: &str,
    ) -> Frame {
        let mut w = Writer::new();
        w.ustring(path)
            .buffer(data)
            .acl(perms, scheme, id)
            .int(CreateMode::Persistent as i32);
        let x = self.alloc_xid();
        self.frame(x, op::CREATE, Some(path), &w)
    }

    pub fn delete_frame(&mut self, path: &str, version: i32) -> Frame {
        let mut w = Writer::new();
        w.ustring(path).int(version);
        let x = self.alloc_xid();
        self.frame(x, op::DELETE, Some(path), &w)
    }

    pub fn exists_frame(&mut self, path: &str, watch: bool) -> Frame {
        self.path_watch_frame(op::EXISTS, path, watch)
    }

    pub fn get_data_frame(&mut self, path: &str, watch: bool) -> Frame {
        self.path_watch_frame(op::GET_DATA, path, watch)
    }

    pub fn get_children_frame(&mut self, path: &str, watch: bool) -> Frame {
        self.path_watch_frame(op::GET_CHILDREN, path, watch)
    }

    pub fn get_children2_frame(&mut self, path: &str, watch: bool) -> Frame {
        self.path_watch_frame(op::GET_CHILDREN2, path, watch)
    }

    fn path_watch_frame(&mut self, opcode: i32, path: &str, watch: bool) -> Frame {
        let mut w = Writer::new();
        w.ustring(path).boolean(watch);
        let x = self.alloc_xid();
        self.frame(x, opcode, Some(path), &w)
    }

    pub fn set_data_frame(&mut self, path: &str, data: &[u8], version: i32) -> Frame {
        let mut w = Writer::new();
        w.ustring(path).buffer(data).int(version);
        let x = self.alloc_xid();
        self.frame(x, op::SET_DATA, Some(path), &w)
    }

    pub fn sync_frame(&mut self, path: &str) -> Frame {
        let mut w = Writer::new();
        w.ustring(path);
        let x = self.alloc_xid();
        self.frame(x, op::SYNC, Some(path), &w)
    }

    pub fn multi_frame(&mut self, ops: &[MultiOp]) -> Frame {
        let mut w = Writer::new();
        for o in ops {
            // MultiHeader {type, done=false, err=-1}, then the op's record.
            w.int(o.opcode()).boolean(false).int(-1);
            match o {
                MultiOp::Create { path, data, mode } => {
                    w.ustring(path).buffer(data).open_acl().int(*mode as i32);
                }
                MultiOp::SetData {
                    path,
                    data,
                    version,
                } => {
                    w.ustring(path).buffer(data).int(*version);
                }
                MultiOp::Delete { path, version } | MultiOp::Check { path, version } => {
                    w.ustring(path).int(*version);
                }
            }
        }
        w.int(-1).boolean(true).int(-1);
        let x = self.alloc_xid();
        let mut f = self.frame(x, op::MULTI, None, &w);
        f.multi_ops = ops
            .iter()
            .map(|o| {
                (
                    jute::request_name(o.opcode()).to_string(),
                    o.path().to_string(),
                )
            })
            .collect();
        f
    }

    /// `AuthPacket{type 0, scheme, auth}` with xid -4.
    pub fn set_auth_frame(&mut self, scheme: &str, auth: &[u8]) -> Frame {
        let mut w = Writer::new();
        w.int(0).ustring(scheme).buffer(auth);
        self.frame(xid::AUTH, op::AUTH, None, &w)
    }

    /// `SetWatches` with xid -8.
    pub fn set_watches_frame(
        &mut self,
        rel_zxid: i64,
        data: &[&str],
        exist: &[&str],
        child: &[&str],
    ) -> Frame {
        let mut w = Writer::new();
        w.long(rel_zxid)
            .vec_ustring(data)
            .vec_ustring(exist)
            .vec_ustring(child);
        self.frame(xid::SET_WATCHES, op::SET_WATCHES, None, &w)
    }

    pub fn ping_frame(&mut self) -> Frame {
        self.frame(xid::PING, op::PING, None, &Writer::new())
    }

    pub fn close_frame(&mut self) -> Frame {
        let x = self.alloc_xid();
        self.frame(x, op::CLOSE_SESSION, None, &Writer::new())
    }

    // ---- sending ----

    fn note_sent(&mut self, f: &Frame) {
        let ty = jute::request_name(f.opcode);
        let key = f.path.clone().unwrap_or_default();
        let size = f.bytes.len() as u64;
        let ops = f.multi_ops.clone();
        self.rec.with(&self.client, |c| {
            c.add(ty, &key, 1).add_bytes(ty, &key, size);
            if f.opcode == op::MULTI {
                c.add_multi(
                    &ops.iter()
                        .map(|(t, p)| (t.as_str(), p.as_str()))
                        .collect::<Vec<_>>(),
                    1,
                );
            }
        });
        self.pending.push_back(Pending {
            xid: f.xid,
            opcode: f.opcode,
            path: key,
        });
    }

    /// One frame, one `write_all`.
    pub fn send(&mut self, f: &Frame) -> io::Result<()> {
        self.stream.write_all(&f.bytes)?;
        self.note_sent(f);
        Ok(())
    }

    /// All frames concatenated and handed to the kernel in one `write()`
    /// (looping only if the kernel takes less).
    pub fn send_pipelined(&mut self, frames: &[Frame]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(frames.iter().map(Frame::len).sum());
        for f in frames {
            buf.extend_from_slice(&f.bytes);
        }
        let mut off = 0;
        while off < buf.len() {
            let n = self.stream.write(&buf[off..])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            off += n;
        }
        for f in frames {
            self.note_sent(f);
        }
        Ok(())
    }

    /// The frame in two writes, `[..at]` and `[at..]`, with `pause` between
    /// so they travel as two segments.
    pub fn send_split(&mut self, f: &Frame, at: usize, pause: Duration) -> io::Result<()> {
        assert!(
            at > 0 && at < f.len(),
            "split point {at} outside 1..{}",
            f.len()
        );
        self.stream.write_all(&f.bytes[..at])?;
        self.stream.flush()?;
        std::thread::sleep(pause);
        self.stream.write_all(&f.bytes[at..])?;
        self.note_sent(f);
        Ok(())
    }

    /// Bytes that are not a request the recorder should know about.
    pub fn send_raw_unrecorded(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    // ---- receiving ----

    fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let n = i32::from_be_bytes(len);
        if !(0..=64 << 20).contains(&n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad frame length {n}"),
            ));
        }
        let mut body = vec![0u8; n as usize];
        self.stream.read_exact(&mut body)?;
        Ok(body)
    }

    /// Reads one frame and files it as an event or a reply.
    fn pump(&mut self) -> io::Result<()> {
        let body = self.read_frame()?;
        let size = body.len() + 4;
        let bad = |e: jute::JuteError| io::Error::new(io::ErrorKind::InvalidData, e);
        let mut r = Reader::new(&body);
        let x = r.int().map_err(bad)?;
        let zxid = r.long().map_err(bad)?;
        let err = r.int().map_err(bad)?;
        if x == xid::WATCH_EVENT {
            let event_type = r.int().map_err(bad)?;
            let state = r.int().map_err(bad)?;
            let path = r.ustring().map_err(bad)?;
            let et = jute::event_type_name(event_type);
            self.rec.with(&self.client, |c| {
                c.add_event(&et, &path, 1)
                    .add_bytes("WatchEvent", &path, size as u64);
            });
            self.events.push_back(Event {
                event_type,
                state,
                path,
                size,
            });
            return Ok(());
        }
        let Some(pos) = self.pending.iter().position(|p| p.xid == x) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("reply with unknown xid {x}"),
            ));
        };
        let p = self.pending.remove(pos).unwrap();
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
        let ty = jute::reply_name(p.opcode);
        let en = jute::err_name(err);
        self.rec.with(&self.client, |c| {
            c.add(&ty, &p.path, 1).add_bytes(&ty, &p.path, size as u64);
            if err != 0 {
                c.add_error(&ty, &en, &p.path, 1);
            }
        });
        self.stash.push_back(Reply {
            xid: x,
            zxid,
            err,
            opcode: p.opcode,
            path: p.path,
            body: body[16..].to_vec(),
            size,
        });
        Ok(())
    }

    /// The reply to `xid` (the oldest one for special xids).
    pub fn recv_reply(&mut self, xid: i32) -> io::Result<Reply> {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            if let Some(pos) = self.stash.iter().position(|r| r.xid == xid) {
                return Ok(self.stash.remove(pos).unwrap());
            }
            if Instant::now() > deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.pump()?;
        }
    }

    /// Replies to `frames`, in order.
    pub fn recv_replies(&mut self, frames: &[Frame]) -> io::Result<Vec<Reply>> {
        frames.iter().map(|f| self.recv_reply(f.xid)).collect()
    }

    /// The next watch event, waiting at most `timeout`.
    pub fn wait_event(&mut self, timeout: Duration) -> io::Result<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no watch event"));
            }
            self.stream.set_read_timeout(Some(left))?;
            let r = self.pump();
            self.stream.set_read_timeout(Some(READ_TIMEOUT))?;
            r?;
        }
    }

    /// Events read so far and not yet taken.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Sends and waits for the reply.
    pub fn call(&mut self, f: Frame) -> io::Result<Reply> {
        self.send(&f)?;
        self.recv_reply(f.xid)
    }

    // ---- synchronous conveniences ----

    pub fn create(&mut self, path: &str, data: &[u8], mode: CreateMode) -> io::Result<Reply> {
        let f = self.create_frame(path, data, mode);
        self.call(f)
    }
    pub fn create2(&mut self, path: &str, data: &[u8], mode: CreateMode) -> io::Result<Reply> {
        let f = self.create2_frame(path, data, mode);
        self.call(f)
    }
    pub fn delete(&mut self, path: &str, version: i32) -> io::Result<Reply> {
        let f = self.delete_frame(path, version);
        self.call(f)
    }
    pub fn exists(&mut self, path: &str, watch: bool) -> io::Result<Reply> {
        let f = self.exists_frame(path, watch);
        self.call(f)
    }
    pub fn get_data(&mut self, path: &str, watch: bool) -> io::Result<Reply> {
        let f = self.get_data_frame(path, watch);
        self.call(f)
    }
    pub fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> io::Result<Reply> {
        let f = self.set_data_frame(path, data, version);
        self.call(f)
    }
    pub fn get_children(&mut self, path: &str, watch: bool) -> io::Result<Reply> {
        let f = self.get_children_frame(path, watch);
        self.call(f)
    }
    pub fn get_children2(&mut self, path: &str, watch: bool) -> io::Result<Reply> {
        let f = self.get_children2_frame(path, watch);
        self.call(f)
    }
    pub fn sync(&mut self, path: &str) -> io::Result<Reply> {
        let f = self.sync_frame(path);
        self.call(f)
    }
    pub fn multi(&mut self, ops: &[MultiOp]) -> io::Result<Reply> {
        let f = self.multi_frame(ops);
        self.call(f)
    }
    /// Digest auth, `cred` as "user:password".
    pub fn set_auth_digest(&mut self, cred: &str) -> io::Result<Reply> {
        let f = self.set_auth_frame("digest", cred.as_bytes());
        self.call(f)
    }
    pub fn set_watches(
        &mut self,
        rel_zxid: i64,
        data: &[&str],
        exist: &[&str],
        child: &[&str],
    ) -> io::Result<Reply> {
        let f = self.set_watches_frame(rel_zxid, data, exist, child);
        self.call(f)
    }
    pub fn ping(&mut self) -> io::Result<Reply> {
        let f = self.ping_frame();
        self.call(f)
    }

    /// Reads whatever the server sends within `quiet` (events, late
    /// replies), so that everything on the wire is recorded.
    pub fn drain(&mut self, quiet: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(quiet))?;
        let r = loop {
            match self.pump() {
                Ok(()) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    break Ok(());
                }
                Err(e) => break Err(e),
            }
        };
        let _ = self.stream.set_read_timeout(Some(READ_TIMEOUT));
        r
    }

    /// CloseRequest, its reply, then reads until the server closes. Returns
    /// the events that were still unread.
    pub fn close(mut self) -> io::Result<Vec<Event>> {
        let f = self.close_frame();
        self.send(&f)?;
        self.recv_reply(f.xid)?.ok();
        // The server closes the connection after the close reply.
        let mut rest = Vec::new();
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            match self.pump() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
        if !self.pending.is_empty() {
            return Err(io::Error::other(format!(
                "{} requests unanswered at close",
                self.pending.len()
            )));
        }
        rest.extend(self.events.drain(..));
        Ok(rest)
    }

    /// Drops the TCP connection without a CloseRequest (the session lives
    /// on) and returns what a reconnect needs.
    pub fn disconnect(mut self) -> io::Result<ConnectOpts> {
        if !self.pending.is_empty() {
            return Err(io::Error::other("disconnect with requests in flight"));
        }
        self.drain(Duration::from_millis(50))?;
        let _ = self.stream.shutdown(Shutdown::Both);
        Ok(ConnectOpts {
            timeout_ms: self.timeout_ms,
            session_id: self.session_id,
            passwd: self.passwd.clone(),
            last_zxid: self.last_zxid,
            read_only: false,
            send_read_only_byte: true,
        })
    }

    /// Disconnects and connects again with the same session id and
    /// password (a `ConnectRequest` with a session id: a reconnect). The
    /// xid counter carries on.
    pub fn reconnect(self) -> io::Result<RawZk> {
        let ep = self.ep.clone();
        let rec = self.rec.clone();
        let next_xid = self.next_xid;
        let opts = self.disconnect()?;
        let mut zk = RawZk::connect_with(&ep, &rec, opts)?;
        zk.next_xid = next_xid;
        Ok(zk)
    }

    /// Raw access (for tests that misbehave on purpose).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

/// `multi_key` for a frame's sub-ops.
pub fn frame_multi_key(f: &Frame) -> String {
    multi_key(f.multi_ops.iter().map(|(t, p)| (t.as_str(), p.as_str())))
}
