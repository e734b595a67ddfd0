//! The dynamic configuration text (ZooKeeper 3.5+): the membership a server
//! sends inside version-2 election notifications and in `NEWLEADER`.
//!
//! Wire format: UTF-8 lines separated by `\n`, as written by
//! `QuorumMaj.toString()` / `QuorumHierarchical.toString()`
//! (`zookeeper-server/.../server/quorum/flexible/`) and read back by
//! `QuorumPeer.QuorumServer` and `QuorumPeerConfig.parseDynamicConfig`:
//!
//! ```text
//! server.<id>=<host>:<quorum port>:<election port>[:<role>][|<host>:<port>:<port>...][;[<client host>:]<client port>]
//! version=<hex>
//! group.<gid>=<id>:<id>...      (hierarchical quorums: counted, not parsed)
//! weight.<id>=<weight>
//! ```
//!
//! `<role>` is `participant` or `observer` (any case); a host may be an IPv6
//! literal in brackets (`[::1]:2888:3888`). `toString()` writes the client
//! address with its host (`;0.0.0.0:2181`); a hand-written config may give
//! the port alone (`;2181`). [`DynamicConfig::parse`] checks every line once;
//! iterating the servers afterwards cannot fail.

use crate::{Error, Result};
use core::iter::FusedIterator;
use core::net::IpAddr;

/// Most `|`-separated addresses accepted for one server (ZooKeeper's
/// multi-address feature); more is [`Error::OverLimit`].
pub const MAX_ADDRESSES: usize = 16;

/// A server's role in the ensemble (`QuorumPeer.LearnerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// Votes in elections and in commits.
    Participant,
    /// Follows the leader without voting.
    Observer,
}

impl Role {
    /// The config-file spelling: `participant` or `observer`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Observer => "observer",
        }
    }

    fn parse(s: &str) -> Result<Role> {
        if s.eq_ignore_ascii_case("participant") {
            Ok(Role::Participant)
        } else if s.eq_ignore_ascii_case("observer") {
            Ok(Role::Observer)
        } else {
            Err(Error::Malformed)
        }
    }
}

/// A client address after `;` in a server line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientAddr<'a> {
    /// The host (brackets of an IPv6 literal removed); `None` when only the
    /// port was given (ZooKeeper then binds 0.0.0.0).
    pub host: Option<&'a str>,
    /// The client port.
    pub port: u16,
}

/// One `server.<id>=...` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerSpec<'a> {
    /// The server id (`myid`).
    pub id: u64,
    /// Host of the first address (brackets of an IPv6 literal removed).
    pub host: &'a str,
    /// Quorum (ZAB) port of the first address.
    pub quorum_port: u16,
    /// Election (FLE) port of the first address.
    pub election_port: u16,
    /// Number of `|`-separated addresses (1 unless multi-address is used).
    pub addresses: usize,
    /// Participant or observer (participant when not given).
    pub role: Role,
    /// The client address, when the line has one.
    pub client: Option<ClientAddr<'a>>,
}

impl ServerSpec<'_> {
    /// The first address's host as an IP address, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// Parses the value of a `server.<id>` line.
    pub fn parse(id: u64, value: &str) -> Result<ServerSpec<'_>> {
        let (servers, client) = match value.split_once(';') {
            Some((s, c)) => {
                if c.contains(';') {
                    return Err(Error::Malformed);
                }
                (s, Some(parse_client(c)?))
            }
            None => (value, None),
        };
        let mut first = None;
        let mut role = Role::Participant;
        let mut addresses = 0;
        for addr in servers.split('|') {
            addresses += 1;
            if addresses > MAX_ADDRESSES {
                return Err(Error::OverLimit);
            }
            let (host, rest) = split_host(addr.trim())?;
            let mut parts = rest.split(':');
            let qport = parse_port(parts.next().ok_or(Error::Malformed)?)?;
            let eport = parse_port(parts.next().ok_or(Error::Malformed)?)?;
            if let Some(r) = parts.next() {
                role = Role::parse(r)?;
            }
            if parts.next().is_some() {
                return Err(Error::Malformed);
            }
            if first.is_none() {
                first = Some((host, qport, eport));
            }
        }
        let (host, quorum_port, election_port) = first.ok_or(Error::Malformed)?;
        Ok(ServerSpec {
            id,
            host,
            quorum_port,
            election_port,
            addresses,
            role,
            client,
        })
    }
}

fn parse_port(s: &str) -> Result<u16> {
    s.trim().parse::<u16>().map_err(|_| Error::Malformed)
}

/// Splits `host:rest` (or `[v6]:rest`) into the host and what follows the
/// first `:` after it. The host must not be empty.
fn split_host(s: &str) -> Result<(&str, &str)> {
    if let Some(inner) = s.strip_prefix('[') {
        let (host, rest) = inner.split_once(']').ok_or(Error::Malformed)?;
        let rest = rest.strip_prefix(':').ok_or(Error::Malformed)?;
        if host.is_empty() {
            return Err(Error::Malformed);
        }
        return Ok((host, rest));
    }
    let (host, rest) = s.split_once(':').ok_or(Error::Malformed)?;
    if host.is_empty() {
        return Err(Error::Malformed);
    }
    Ok((host, rest))
}

fn parse_client(s: &str) -> Result<ClientAddr<'_>> {
    let s = s.trim();
    if !s.starts_with('[') && !s.contains(':') {
        return Ok(ClientAddr {
            host: None,
            port: parse_port(s)?,
        });
    }
    let (host, port) = split_host(s)?;
    Ok(ClientAddr {
        host: Some(host),
        port: parse_port(port)?,
    })
}

/// Parses `host:port` (or `[v6]:port`), the form of the addresses in the
/// election handshake.
pub fn parse_host_port(s: &str) -> Result<(&str, u16)> {
    let (host, port) = split_host(s.trim())?;
    Ok((host, parse_port(port)?))
}

/// One classified line.
enum Line<'a> {
    Server(ServerSpec<'a>),
    Version(u64),
    Other,
    Blank,
}

fn classify(line: &str) -> Result<Line<'_>> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Line::Blank);
    }
    let (key, value) = line.split_once('=').ok_or(Error::Malformed)?;
    let key = key.trim();
    if let Some(id) = key.strip_prefix("server.") {
        let id = id.parse::<u64>().map_err(|_| Error::Malformed)?;
        return ServerSpec::parse(id, value.trim()).map(Line::Server);
    }
    if key == "version" {
        return u64::from_str_radix(value.trim(), 16)
            .map(Line::Version)
            .map_err(|_| Error::Malformed);
    }
    Ok(Line::Other)
}

/// A checked dynamic configuration, borrowed from the message that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DynamicConfig<'a> {
    text: &'a str,
    version: Option<u64>,
    servers: usize,
    participants: usize,
    other_lines: usize,
}

impl<'a> DynamicConfig<'a> {
    /// Checks every line of `text`: `server.<id>` lines must parse, a
    /// `version` must be hexadecimal; other `key=value` lines (groups,
    /// weights) are counted. A line without `=` is [`Error::Malformed`].
    pub fn parse(text: &'a str) -> Result<Self> {
        let mut c = DynamicConfig {
            text,
            version: None,
            servers: 0,
            participants: 0,
            other_lines: 0,
        };
        for line in text.split('\n') {
            match classify(line)? {
                Line::Server(s) => {
                    c.servers += 1;
                    if s.role == Role::Participant {
                        c.participants += 1;
                    }
                }
                Line::Version(v) => c.version = Some(v),
                Line::Other => c.other_lines += 1,
                Line::Blank => {}
            }
        }
        Ok(c)
    }

    /// [`DynamicConfig::parse`] on bytes that must be UTF-8.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self> {
        let text = core::str::from_utf8(bytes).map_err(|_| Error::BadUtf8)?;
        Self::parse(text)
    }

    /// The text as it was on the wire.
    pub const fn text(&self) -> &'a str {
        self.text
    }

    /// The `version=` value (the zxid that created this config), if given.
    pub const fn version(&self) -> Option<u64> {
        self.version
    }

    /// Number of `server.<id>` lines.
    pub const fn len(&self) -> usize {
        self.servers
    }

    /// True when no server is listed.
    pub const fn is_empty(&self) -> bool {
        self.servers == 0
    }

    /// Number of participants (voting members).
    pub const fn participants(&self) -> usize {
        self.participants
    }

    /// Number of other `key=value` lines (groups, weights).
    pub const fn other_lines(&self) -> usize {
        self.other_lines
    }

    /// The servers, in text order.
    pub fn servers(&self) -> Servers<'a> {
        Servers {
            lines: self.text.split('\n'),
        }
    }

    /// The server with this id.
    pub fn server(&self, id: u64) -> Option<ServerSpec<'a>> {
        self.servers().find(|s| s.id == id)
    }
}

/// Iterator over the servers of a [`DynamicConfig`].
#[derive(Debug, Clone)]
pub struct Servers<'a> {
    lines: core::str::Split<'a, char>,
}

impl<'a> Iterator for Servers<'a> {
    type Item = ServerSpec<'a>;

    fn next(&mut self) -> Option<ServerSpec<'a>> {
        for line in self.lines.by_ref() {
            // The text was checked by `DynamicConfig::parse`.
            if let Ok(Line::Server(s)) = classify(line) {
                return Some(s);
            }
        }
        None
    }
}

impl FusedIterator for Servers<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    const OMNI: &str = "server.1=localhost:2780:2783:participant;0.0.0.0:2181\n\
                        server.2=localhost:2781:2784:participant;0.0.0.0:2182\n\
                        server.3=localhost:2782:2785:participant;0.0.0.0:2183\n\
                        version=100000000";

    #[test]
    fn parses_what_quorum_maj_writes() {
        let c = DynamicConfig::parse(OMNI).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c.participants(), 3);
        assert_eq!(c.version(), Some(0x1_0000_0000));
        let s2 = c.server(2).unwrap();
        assert_eq!(
            s2,
            ServerSpec {
                id: 2,
                host: "localhost",
                quorum_port: 2781,
                election_port: 2784,
                addresses: 1,
                role: Role::Participant,
                client: Some(ClientAddr {
                    host: Some("0.0.0.0"),
                    port: 2182
                }),
            }
        );
        assert_eq!(s2.ip(), None);
        let ids: [u64; 3] = core::array::from_fn(|i| c.servers().nth(i).unwrap().id);
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(c.servers().count(), 3);
    }

    #[test]
    fn ipv6_observers_ports_only_and_multi_address() {
        let text = "server.7=[::1]:2888:3888:observer;[::1]:2181\n\
                    server.8=10.0.0.8:2888:3888;2181\n\
                    server.9=10.0.0.9:2888:3888|10.1.0.9:2888:3888:PARTICIPANT\n\
                    group.1=7:8:9\nweight.7=1\n\nversion=0";
        let c = DynamicConfig::parse(text).unwrap();
        assert_eq!((c.len(), c.participants(), c.other_lines()), (3, 2, 2));
        assert_eq!(c.version(), Some(0));
        let s7 = c.server(7).unwrap();
        assert_eq!((s7.host, s7.role), ("::1", Role::Observer));
        assert_eq!(s7.ip(), Some("::1".parse().unwrap()));
        assert_eq!(s7.client.unwrap().host, Some("::1"));
        let s8 = c.server(8).unwrap();
        assert_eq!(
            s8.client,
            Some(ClientAddr {
                host: None,
                port: 2181
            })
        );
        assert_eq!(s8.role, Role::Participant);
        let s9 = c.server(9).unwrap();
        assert_eq!((s9.host, s9.addresses), ("10.0.0.9", 2));
    }

    #[test]
    fn bad_lines_are_malformed() {
        for bad in [
            "server.x=h:1:2",
            "server.1=h:1",
            "server.1=h:1:2:leader",
            "server.1=h:1:2:participant:9",
            "server.1=h:99999:2",
            "server.1=:1:2",
            "server.1=[::1:1:2",
            "server.1=h:1:2;3;4",
            "server.1=h:1:2;h:x",
            "version=xyz",
            "no equals sign",
        ] {
            assert_eq!(DynamicConfig::parse(bad), Err(Error::Malformed), "{bad}");
        }
        assert_eq!(
            DynamicConfig::parse_bytes(&[b's', 0xff]),
            Err(Error::BadUtf8)
        );
    }

    #[test]
    fn too_many_addresses_is_over_limit() {
        let mut buf = [0u8; 1024];
        let mut n = 0;
        for b in b"server.1=" {
            buf[n] = *b;
            n += 1;
        }
        for i in 0..=MAX_ADDRESSES {
            if i > 0 {
                buf[n] = b'|';
                n += 1;
            }
            for b in b"h:1:2" {
                buf[n] = *b;
                n += 1;
            }
        }
        assert_eq!(DynamicConfig::parse_bytes(&buf[..n]), Err(Error::OverLimit));
    }

    #[test]
    fn host_port_pairs() {
        assert_eq!(parse_host_port("localhost:2784"), Ok(("localhost", 2784)));
        assert_eq!(parse_host_port("[fe80::1]:3888"), Ok(("fe80::1", 3888)));
        assert_eq!(parse_host_port("127.0.0.3:3888"), Ok(("127.0.0.3", 3888)));
        assert_eq!(parse_host_port("nohost"), Err(Error::Malformed));
        assert_eq!(parse_host_port("h:"), Err(Error::Malformed));
    }
}
